"""Reading the queue-settings file into UpdateQueueSettings requests, and its error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from leasq_broker.edge.group_converters import settings_update
from leasq_broker.settings.file import QueueSettingsFileError, load

GOOD = """
[[queue]]
name = "email"
max_active = 5
rate_limit = { per_second = 100, burst = 20 }

[[queue]]
name = "digests"
groups = { grace_period = "2s", max_delay = 60, max_size = 500 }
concurrency_keys = { per_key_limit = 2 }
"""


def test_each_queue_becomes_a_request_whose_mask_names_exactly_the_fields_present(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(GOOD)
    entries, _ = load(path)
    email, digests = (entry.request for entry in entries)
    assert (email.queue, sorted(email.update_mask.paths)) == ("email", ["max_active", "rate_limit"])
    assert (email.settings.max_active, email.settings.rate_limit.per_second,
            email.settings.rate_limit.burst) == (5, 100.0, 20)
    assert sorted(digests.update_mask.paths) == [
        "concurrency_keys.per_key_limit", "groups.grace_period", "groups.max_delay",
        "groups.max_size"]
    assert digests.settings.groups.grace_period.ToMilliseconds() == 2000
    assert digests.settings.groups.max_delay.ToMilliseconds() == 60_000
    update = settings_update(digests)  # the RPC's own converter reads it
    assert (update.groups.grace_ms, update.groups.max_size, update.flow.per_key_limit) == (
        2000, 500, 2)
    assert update.flow.max_active is None and not update.flow.reset  # absent: left as is


def test_default_names_a_field_to_return_it_to_its_default(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[[queue]]\nname = "email"\nrate_limit = "default"\nmax_active = "default"\n')
    (entry,), _ = load(path)
    update = settings_update(entry.request)
    assert update.flow.reset == {"rate_limit", "max_active"}


@pytest.mark.parametrize(("content", "message"), [
    ('[[queue]]\nname = "email"\nmax_actve = 5\n',
     "settings.toml:3: queue 'email' max_actve: unknown field"),
    ('[[queue]]\nname = "email"\nmax_active = -1\n',
     "settings.toml:3: queue 'email' max_active: must be a whole number >= 0"),
    ('[[queue]]\nname = "email"\n\ngroups = { grace_period = "soon" }\n',
     "settings.toml:4: queue 'email' groups.grace_period: invalid duration"),
    ('[[queue]]\nname = "a"\nmax_active = 1\n[[queue]]\nname = "a"\nmax_active = 2\n',
     "settings.toml:5: queue #2 name: the queue 'a' is listed twice"),
    ('[[queue]]\nmax_active = 1\n', "settings.toml:1: queue #1 name: give the queue's name"),
    ('[[queue]]\nname = "a"\n', "settings.toml:1: queue 'a': sets nothing"),
    ('[queues]\n', "settings.toml: unknown top-level keys ['queues']"),
    ('[[queue]\n', "settings.toml: not valid TOML"),
])  # fmt: skip
def test_a_malformed_file_is_refused_naming_the_line_the_queue_and_the_field(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(content)
    with pytest.raises(QueueSettingsFileError) as refused:
        load(path)
    assert message in str(refused.value)
