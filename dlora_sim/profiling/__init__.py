"""Real fine-tuning runs that measure and write profiles (the only package that imports torch).

Modules, one job each: ``tasks`` (the committed WordNet tasks and batching), ``models``
(MiniLM-L6 + LoRA/Adapter/IA3 + head), ``freezing`` (kill/revive mechanics, norms, probe
batches), ``train`` (the loop with KR rounds), ``flops`` (measured FLOPs per module and base),
``runner`` (from a run to a validated :class:`dlora_sim.profile.Profile`). Nothing is imported
here, so ``import dlora_sim.profiling`` stays cheap without the ``[profile]`` extra.
"""
