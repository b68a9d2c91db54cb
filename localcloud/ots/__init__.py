"""Tablestore (OTS) emulation at the protocol level, for the real ``tablestore.OTSClient``.

``wire.handle`` is what the HTTP server calls; ``models`` holds tables and rules; ``plainbuffer`` the row
encoding; ``filters`` the column conditions; ``persist`` the optional state file.
"""
