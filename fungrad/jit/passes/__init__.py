"""The compiler's passes, in order: lower → rewrite → schedule → emit → verify.

Each consumes the previous one's product (see ``fungrad/jit/README.md``):
:mod:`~fungrad.jit.passes.lower` (program steps to IR nodes and storages),
:mod:`~fungrad.jit.passes.rewrite` (accumulation chains, embedding bags),
:mod:`~fungrad.jit.passes.schedule` (order, commit phase, fusion into groups),
:mod:`~fungrad.jit.passes.emit` (buffers and instructions) and
:mod:`~fungrad.jit.passes.verify` (the whole instruction array checked before it runs).
"""
