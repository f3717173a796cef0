"""The ground floor: paths, errors, the offline guard, BLAS set-up, ids and clock.

Imports nothing from Hearth above it; every other package may import it.
"""
