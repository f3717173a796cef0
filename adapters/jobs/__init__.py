"""Adapter orchestration: the refresh policy and its conditions, the background worker and
its priority, the nightly schedule files. Uses `adapters.training`, the store and the runtime.
"""
