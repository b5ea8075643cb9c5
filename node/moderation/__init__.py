"""Moderation and members' control over their own data: blocks (domains, actors), reports
(local and federated `Flag`), removals and suspensions, data export and account deletion."""
