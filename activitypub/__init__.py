"""ActivityPub vocabulary and protocol pieces: JSON shapes, HTTP signatures, WebFinger, NodeInfo.

Nothing here touches the database: pure functions and small classes.
"""
