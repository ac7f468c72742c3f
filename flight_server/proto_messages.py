"""Protobuf message classes from a descriptor set the project commits.

The classes live in a private descriptor pool rather than protobuf's default one:
other Flight SQL modules (flightsql-dbapi, a vendor SDK) register the same
message names in the default pool, and two registrations of one name in one
process is an error. Type URLs still read `<package>.<Message>`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["message_classes"]


def message_classes(package: str, descriptor_set: str, proto_package: str) -> Callable[[str], type]:
    """A lookup of message classes by name, from `descriptor_set` (a compiled .binpb
    shipped in the Python package `package`) in a pool of its own."""
    pool = descriptor_pool.DescriptorPool()
    raw = resources.files(package).joinpath(descriptor_set).read_bytes()
    for file in descriptor_pb2.FileDescriptorSet.FromString(raw).file:
        pool.Add(file)

    def message(name: str) -> type:
        return message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{proto_package}.{name}")
        )

    return message
