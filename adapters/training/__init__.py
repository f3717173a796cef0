"""The adapter layer's own logic: datasets, LoRA training, the shared evaluator, the gate,
the registry and its files, settings and the one exception. Imports only `agent.foundation`
and `agent.llm`; the orchestration above (`adapters.jobs`, `adapters.eval`) uses it.
"""
