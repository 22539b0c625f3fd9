"""Non-phone intake and notification: SMS, e-mail, Open311 and CTI adapters."""
