"""What the node publishes: activities are stored, addressed, queued and delivered from here."""
