"""Call records, recordings, missed calls, voicemail and fax."""
