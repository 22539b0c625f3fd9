"""Message channels: the SMS acceptance centre (1063912345 through Kannel), its outbox, templates and inbound handling."""
