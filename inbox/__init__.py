"""What arrives: signatures verified, activities deduplicated, one handler per activity type."""
