"""Hearth's screens, one per file: the five main screens and the small modal dialogs."""
