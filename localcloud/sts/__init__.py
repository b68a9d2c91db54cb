"""STS 2015-04-01: AssumeRole and GetCallerIdentity (``wire`` parses, ``models`` decides)."""
