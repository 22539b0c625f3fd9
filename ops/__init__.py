"""Operations: the alarm service and its rules, the periodic checks and the daily backup job, the process
log reader for the administrator's log page."""
