"""Offers and needs: the mutual-aid core (domain, wire format, responses)."""
