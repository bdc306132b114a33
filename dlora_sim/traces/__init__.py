"""Real fleets from files: device capacity traces in an open format, and converters into it.

:mod:`.capacity` reads the device-capacity format (CSV or Parquet, one row a device) that a
fleet group can draw its devices from; :mod:`.fedscale` converts FedScale's pickled traces into
it through an unpickler that builds nothing but plain data. The formats are documented in
``docs/traces.md``; availability traces (online intervals) are read by the scenario package.
"""
