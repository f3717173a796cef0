"""Hearth's widgets, one per file: message bubbles, sources, the status and navigation bars."""
