"""Runtimes that turn a torch model into a prepared, callable inference on a device.

A backend is a class named by `backend.runtime._target_` with one method,
`prepare(model, example, device) -> Prepared`. A Prepared object runs one inference on the
bound example input when called, and `profile(iterations)` returns an embench.profiling.Profile.
"""
