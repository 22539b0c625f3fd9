"""The shipped production files (deploy/): systemd units, the environment example, nginx."""
