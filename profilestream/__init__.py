"""The composition root, above the services: the command line (`python -m profilestream up`),
the embedded-stack supervisor (Tansu, Valkey, chDB and the service processes) and the port and
data-directory checks. The only package that imports the services."""
