"""ESL to FreeSWITCH: the only code that imports greenswitch. Wire codec, inbound connection, outbound server, per-call session."""
