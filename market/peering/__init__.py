"""Peer exchanges (互认互通, MISSION §8): who they are, what of theirs is recognised here, and
every refusal of a peer's claim, kept for staff."""
