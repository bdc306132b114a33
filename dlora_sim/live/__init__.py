"""Live DLoRA: a real edge process and a real cloud process, and the simulator held against them.

Small modules, one job each (docs/live.md tells the whole story):

- ``wire``: the message format (a typed ``struct`` header and raw numpy buffers; no pickle);
- ``channel``: the ZeroMQ tunnel (requests, answers, retries, idempotent repeats, refusals);
- ``job``: the live job and the cost model's exchange lists that both processes follow;
- ``training``: what the edge and a single-process reference share (model, batches, KR rule);
- ``edge``, ``cloud``: the two processes (``python -m dlora_sim.live.edge`` / ``.cloud``);
- ``shaping``: network namespaces, a veth pair, ``tbf`` and ``netem``;
- ``runner``: start both processes (shaped or not), wait, collect what they wrote;
- ``compare``: calibrate, write the matching scenario, simulate it, table predicted vs measured.

Nothing is imported here: ``import dlora_sim.live`` needs neither torch nor pyzmq.
"""
