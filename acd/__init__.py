"""Automatic call distribution: queues, agents, distribution rules, dispatcher and team-lead actions."""
