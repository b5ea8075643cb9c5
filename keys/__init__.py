"""Key material: key pairs of local actors, and the cache of remote public keys."""
