"""typing.Protocol interfaces the services depend on."""
