"""RAM 2015-05-01: roles, policies, policy versions and attachments (``wire`` parses, ``models`` decides)."""
