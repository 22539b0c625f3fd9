"""The case engine: tickets, departments and users, the workflow, deadlines, reminders and knowledge base."""
