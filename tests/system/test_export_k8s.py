"""`export --format k8s`: CronJobs valid against the official Kubernetes schema."""

from __future__ import annotations

import pytest

from cronctl.export import k8s

from .conftest import make_task

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed"
)
yaml = pytest.importorskip(
    "yaml", reason="PyYAML (a dependency of kubernetes-validate) is not installed"
)

# timeZone in CronJobs is stable from 1.27; check the oldest such schema and the newest one.
VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]

TASKS = [
    make_task(
        "backup",
        "0 2 * * *",
        'restic backup ~/docs && echo "100% done" # not a YAML comment',
        description="Nightly backup: yes, no, on, off",
        timezone="America/New_York",
        timeout="30m",
        retries=2,
        jitter="5m",
        catch_up="once",
        working_dir="/srv/backups",
        env={
            "RESTIC_REPOSITORY": "/srv/restic",
            "ODD": "line1\nline2\t\"q\" 'a' \\ é \u2028 \x07",
            "EMPTY": "",
        },
    ),
    make_task(
        "Report_Monthly.v2", "30 4 1,15 * FRI", "make-report", overlap="queue", enabled=False
    ),
    make_task("replace-me", "*/5 * * * *", "poll", overlap="replace", catch_up="all"),
    make_task("allow", "0 12 * * 5-7", "weekend", overlap="allow", keep_runs=1),
    make_task("tick", "@every 10m", "tick"),
    make_task("hourly2", "@every 2h", "sync"),
    make_task(
        "hashed",
        "H H(0-5) * * MON-FRI",
        "hashed",
        shell="/bin/bash",
        when="test -f /x",
        after=["tick"],
    ),
    make_task("x" * 63, "@daily", "long name"),
]


def manifests(**options):
    documents, skipped = k8s.cronjobs(TASKS, image="registry.example.org/jobs:1", **options)
    return documents, skipped


@pytest.mark.parametrize("version", VERSIONS)
def test_every_cronjob_validates_against_the_schema(version):
    documents, skipped = manifests(namespace="batch")
    assert skipped == []
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_yaml_text_parses_back_to_the_same_valid_documents(version):
    result = k8s.export(TASKS, image="registry.example.org/jobs:1", namespace="batch")
    text = result.files[0].text
    parsed = [d for d in yaml.safe_load_all(text) if d is not None]
    documents, _ = manifests(namespace="batch")
    assert parsed == documents
    for document in parsed:
        kubernetes_validate.validate(document, version, strict=True)


def by_task(documents):
    return {d["metadata"]["annotations"]["cronctl/task"]: d for d in documents}


def test_mapping_of_settings():
    jobs = by_task(manifests()[0])
    backup = jobs["backup"]["spec"]
    assert backup["schedule"] == "0 2 * * *" and backup["timeZone"] == "America/New_York"
    assert backup["concurrencyPolicy"] == "Forbid" and backup["suspend"] is False
    assert (
        "startingDeadlineSeconds" not in backup
    )  # catch_up once: the controller runs the latest missed
    job = backup["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2
    pod = job["template"]["spec"]
    assert pod["activeDeadlineSeconds"] == 1800  # per attempt, like cronctl's timeout
    assert job["activeDeadlineSeconds"] >= 3 * 1800  # room for all three attempts
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["image"] == "registry.example.org/jobs:1"
    assert container["command"] == ["/bin/sh", "-c", TASKS[0].command]
    assert container["workingDir"] == "/srv/backups"
    assert {"name": "RESTIC_REPOSITORY", "value": "/srv/restic"} in container["env"]
    assert "jitter 5m" in jobs["backup"]["metadata"]["annotations"]["cronctl/lost"]

    report = jobs["Report_Monthly.v2"]
    assert report["spec"]["suspend"] is True
    assert report["spec"]["schedule"] == "30 4 1,15 * 5"
    assert report["metadata"]["name"] == "report-monthly-v2"
    assert "queue" in report["metadata"]["annotations"]["cronctl/lost"]
    assert report["spec"]["startingDeadlineSeconds"] == k8s.SKIP_DEADLINE_SECONDS

    assert jobs["replace-me"]["spec"]["concurrencyPolicy"] == "Replace"
    assert "catch_up all" in jobs["replace-me"]["metadata"]["annotations"]["cronctl/lost"]
    allow = jobs["allow"]["spec"]
    assert allow["concurrencyPolicy"] == "Allow" and allow["schedule"] == "0 12 * * 0,5,6"
    assert allow["successfulJobsHistoryLimit"] == 1 and allow["failedJobsHistoryLimit"] == 1
    assert (
        jobs["tick"]["spec"]["schedule"] == "*/10 * * * *"
        and jobs["tick"]["spec"]["timeZone"] == "Etc/UTC"
    )
    assert jobs["hourly2"]["spec"]["schedule"] == "0 */2 * * *"
    hashed = jobs["hashed"]
    assert hashed["spec"]["schedule"].endswith(" * * 1-5") and "H" not in hashed["spec"]["schedule"]
    lost = hashed["metadata"]["annotations"]["cronctl/lost"]
    assert "H in" in lost and "when" in lost and "after tick" in lost
    assert (
        hashed["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][0]
        == "/bin/bash"
    )
    long_name = jobs["x" * 63]["metadata"]["name"]
    assert len(long_name) <= 52 and long_name.startswith("xxxx")


def test_names_that_collide_after_sanitising_stay_apart():
    tasks = [make_task("db_dump", "@daily", "a"), make_task("db-dump", "@daily", "b")]
    documents, _ = k8s.cronjobs(tasks, image="i")
    names = [d["metadata"]["name"] for d in documents]
    assert len(set(names)) == 2 and all(n.startswith("db-dump-") for n in names)


@pytest.mark.parametrize(
    ("schedule", "why"),
    [
        ("@reboot", "@reboot"),
        ("0 23 L * *", "'L'"),
        ("0 9 * * FRI#1", "DOW#N"),
        ("@every 7m", "no cron line"),
        ("0 0 */2 * MON", "must both match"),
    ],
)
def test_what_a_cronjob_cannot_express_is_left_out_with_the_reason(schedule, why):
    documents, skipped = k8s.cronjobs([make_task("t", schedule, "x")], image="i")
    assert documents == [] and len(skipped) == 1 and why in skipped[0].reason


def test_day_fields_are_written_for_the_controller_s_parser():
    # robfig/cron (the CronJob controller) ORs the day fields unless one is exactly '*'.
    def line(expression):
        return k8s.cronjobs([make_task("t", expression, "x")], image="i")[0][0]["spec"]["schedule"]

    assert line("0 0 */2 * *") == "0 0 */2 * *"  # AND: the weekday field is exactly "*"
    assert line("0 0 * * MON") == "0 0 * * 1"
    assert line("0 0 1,15 * MON") == "0 0 1,15 * 1"  # OR, as cron
    assert line("0 0 1-31 * MON") == "0 0 * * *"  # OR with a field that matches every day
    assert line("0 0 * * 7") == "0 0 * * 0"  # the controller has no 7 for Sunday
    assert line("@weekly") == "0 0 * * 0"


def test_cli_needs_image_and_prints_documents(cli):
    cli("add", "backup", "0 2 * * *", "restic backup")
    cli("add", "boot", "@reboot", "echo hi")
    missing = cli("export", "--format", "k8s")
    assert missing.exit_code == 2 and "--image" in missing.stderr
    result = cli("export", "--format", "k8s", "--image", "alpine:3", "--namespace", "ops")
    assert result.exit_code == 1  # boot was left out
    assert "task boot not exported: @reboot" in result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [d["metadata"]["name"] for d in documents] == ["backup"]
    assert documents[0]["metadata"]["namespace"] == "ops"
    only = cli("export", "--format", "k8s", "--image", "alpine:3", "backup")
    assert only.exit_code == 0
    unknown = cli("export", "--format", "k8s", "--image", "alpine:3", "nope")
    assert unknown.exit_code == 2 and "no task named 'nope'" in unknown.stderr
