"""Enumerations shared by records and wire models. Values are what travels on the wire."""

from enum import StrEnum


class Role(StrEnum):
    """Who is calling. See the roles table of the protocol."""

    admin = "admin"
    coordinator = "coordinator"
    ranger_lead = "ranger_lead"
    ranger = "ranger"
    extension_worker = "extension_worker"


class CommunityKind(StrEnum):
    settlement = "settlement"
    native_community = "native_community"
    hamlet = "hamlet"


class AttributeType(StrEnum):
    """The type of one attribute of an observation category."""

    number = "number"
    text = "text"
    list = "list"
    bool = "bool"
    date = "date"
