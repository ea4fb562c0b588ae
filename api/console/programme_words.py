"""The words of the coordinator's pages for the service's keys: programmes, statuses,
sexes, record types and their fields, conflict kinds, duplicate reasons.

Pages hand templates ``word(kind, key)``, which says a key in the viewer's language; a
key no table holds (a field added later) is shown as it is, never hidden.
"""

from __future__ import annotations

from collections.abc import Callable

from api.console.i18n import N_, translations

WORDS: dict[str, dict[str, str]] = {
    "program": {
        "coffee_production": N_("Coffee production"),
        "financial_skills": N_("Financial skills"),
        "school_environmental_education": N_("School environmental education"),
        "other": N_("Other training"),
    },
    "session_status": {
        "planned": N_("Planned"),
        "held": N_("Held"),
        "cancelled": N_("Cancelled"),
    },
    "sex": {
        "female": N_("Woman"),
        "male": N_("Man"),
        "other": N_("Other"),
        "unknown": N_("Not recorded"),
    },
    "attendance_role": {
        "participant": N_("Participant"),
        "facilitator": N_("Facilitator"),
    },
    "agreement_status": {
        "draft": N_("Draft"),
        "active": N_("Active"),
        "suspended": N_("Suspended"),
        "terminated": N_("Terminated"),
        "expired": N_("Expired"),
    },
    "doc_type": {
        "dni": N_("DNI"),
        "ce": N_("Foreigner's card"),
        "none": N_("No document"),
    },
    "reason": {
        "same_document": N_("Same document"),
        "same_name_birth_year_community": N_("Same name, birth year and community"),
    },
    "entity": {
        "person": N_("Person"),
        "household": N_("Household"),
        "agreement": N_("Conservation agreement"),
        "training_session": N_("Training session"),
        "attendance": N_("Attendance"),
        "patrol": N_("Patrol"),
        "observation": N_("Observation"),
        "track_segment": N_("Track segment"),
    },
    "conflict_kind": {
        "fields": N_("Both sides changed the same fields"),
        "locked": N_("The record was approved and is locked"),
        "deleted": N_("The server had deleted the record"),
        "create_locked": N_("Made on the tablet under an approved patrol"),
    },
    "device_op": {
        "create": N_("The tablet made it"),
        "update": N_("The tablet changed it"),
        "delete": N_("The tablet deleted it"),
    },
    "conflict_status": {
        "open": N_("Open"),
        "resolved": N_("Resolved"),
    },
    "resolution": {
        "keep_server": N_("Kept the server's"),
        "take_device": N_("Took the tablet's"),
        "custom": N_("Edited"),
    },
    "field": {
        "given_names": N_("Given names"),
        "paternal_surname": N_("Paternal surname"),
        "maternal_surname": N_("Maternal surname"),
        "sex": N_("Sex"),
        "birth_year": N_("Birth year"),
        "doc_type": N_("Document type"),
        "doc_number": N_("Document number"),
        "phone": N_("Phone"),
        "community_id": N_("Community"),
        "household_id": N_("Household"),
        "code": N_("Code"),
        "head_person_id": N_("Head of household"),
        "location": N_("Home location"),
        "members": N_("Members"),
        "signatory_person_id": N_("Signatory"),
        "signed_on": N_("Signed on"),
        "valid_from": N_("Valid from"),
        "valid_until": N_("Valid until"),
        "renews_agreement_id": N_("Renews agreement"),
        "status": N_("Status"),
        "area_total_ha": N_("Total area (ha)"),
        "area_forest_ha": N_("Forest (ha)"),
        "area_coffee_ha": N_("Coffee (ha)"),
        "commitments": N_("Commitments"),
        "benefits": N_("Benefits"),
        "consent": N_("Consent"),
        "attachments": N_("Files"),
        "program": N_("Programme"),
        "topic": N_("Topic"),
        "venue": N_("Venue"),
        "starts_at": N_("Starts"),
        "ends_at": N_("Ends"),
        "facilitators": N_("Facilitators"),
        "headcount": N_("Headcount"),
        "session_id": N_("Training session"),
        "person_id": N_("Person"),
        "role": N_("Role"),
        "sector_id": N_("Sector"),
        "patrol_type": N_("Patrol type"),
        "objective": N_("Objective"),
        "leader_id": N_("Leader"),
        "transport": N_("Transport"),
        "started_at": N_("Started"),
        "ended_at": N_("Ended"),
        "rest_minutes": N_("Rest (minutes)"),
        "comment": N_("Comment"),
        "patrol_id": N_("Patrol"),
        "category_key": N_("Category"),
        "observed_at": N_("Observed at"),
        "lat": N_("Latitude"),
        "lon": N_("Longitude"),
        "accuracy_m": N_("Accuracy (m)"),  # schema version 1, in older versions' history
        "gps": N_("Position: accuracy and fix"),
        "attributes": N_("Attributes"),
        "notes": N_("Notes"),
        "action_taken": N_("Action taken"),
        "points": N_("Points"),
    },
}


def words(lang: str) -> Callable[[str, object], str]:
    """``word(kind, key)`` in ``lang``: the key itself where no table names it."""
    translate = translations(lang).gettext

    def word(kind: str, key: object) -> str:
        value = getattr(key, "value", key)
        message = WORDS.get(kind, {}).get(str(value))
        return translate(message) if message else str(value)

    return word
