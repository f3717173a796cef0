"""The model runtime floor: model resolution and GGUF conversion, the MLX runtime, the prompt.

`prompt` is here because the adapter trains on exactly the messages the runtime is served.
Imports only `agent.foundation`.
"""
