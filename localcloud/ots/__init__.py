"""Tablestore (OTS) emulation at the protocol level, for the real ``tablestore.OTSClient``.

``wire.handle`` is what the HTTP server calls; ``models`` holds tables and rules; ``plainbuffer`` the row
encoding; ``filters`` the column conditions; ``persist`` the optional state file.
"""

import logging

# Importing tablestore (for its protobuf messages) logs "Native C++ encoder/decoder not available" on
# Python != 3.12; the emulator uses neither, so keep that out of its output.
for _name in ("tablestore.encoder", "tablestore.decoder"):
    logging.getLogger(_name).setLevel(logging.ERROR)
