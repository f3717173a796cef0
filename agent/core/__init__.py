"""The product core: the turn loop (`turn`) and the chat's commands (`commands`).

Sits above memory and the adapter layer, below the shells (`agent.cli`, `tui`).
"""
