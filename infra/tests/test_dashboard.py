"""The dashboard in template.yaml plots only metrics the functions emit, under the
namespace and dimensions they emit them with, and AWS metrics of resources the stack
has. What the functions emit is read from their Rust sources (`Metrics::new`,
`.count`, `.duration`, `.status` in functions/*/src)."""

import json
import pathlib
import re
import sys
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


sys.path.insert(0, str(ROOT / "infra"))

import stack  # noqa: E402  (infra/stack.py reads the template with CloudFormation's tags)
from cargo import function_sources  # noqa: E402

TEMPLATE = stack.template()
RESOURCES = TEMPLATE["Resources"]

# What `${...}` placeholders of the dashboard's !Sub become: markers no real value has.
STACK = "<stack>"
REGION = "<region>"


def ref(logical):
    return f"<ref:{logical}>"


def att(logical, attribute):
    return f"<att:{logical}.{attribute}>"


def substitute(text):
    """The text of a !Sub with each placeholder replaced by its marker."""

    def marker(match):
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name == "AWS::StackName":
            return STACK
        if name == "AWS::Region":
            return REGION
        logical, _, attribute = name.partition(".")
        assert logical in RESOURCES or logical in TEMPLATE["Parameters"], f"${{{name}}}: no such resource"
        return att(logical, attribute) if attribute else ref(logical)

    return re.sub(r"\$\{([^}]+)\}", marker, text)


def resolve(value):
    """A template value as the markers say it: `!Ref AWS::StackName` is STACK."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        return substitute(value["Fn::Sub"])
    if "Ref" in value:
        return substitute("${" + value["Ref"] + "}")
    raise AssertionError(f"cannot resolve {value}")


def dashboard_body():
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]
    assert isinstance(body, dict) and isinstance(body["Fn::Sub"], str), "DashboardBody: one !Sub string"
    return json.loads(substitute(body["Fn::Sub"]))


# What the code emits.


@dataclass
class Emitted:
    namespace: str
    names: set
    status: bool


def without_tests(source):
    """A source file without its `#[cfg(test)]` module (kept at the end of the file)."""
    return source.split("#[cfg(test)]")[0]


# An EMF metric name here is one CamelCase word: `"WorkDone"`, never a log message.
METRIC_NAME = r'"((?:[A-Z][a-z0-9]+)+)"'


def metric_names(source):
    """Names counted or timed as literals (`.count("Received", 1)`,
    `.duration("QueueWait", wait)`) and, in a file that counts a name held in a variable
    (the worker's `metrics.count(counted, 1)` of what `process` returns), every CamelCase
    literal of that file."""
    names = set(re.findall(r'\.(?:count|duration)\(\s*"([^"]+)"', source))
    if re.search(r"\.count\(\s*[a-z_][a-z0-9_]*\s*,", source):
        names |= set(re.findall(METRIC_NAME, source))
    return names


def function_resource(binary):
    """The template's function built from the crate's binary."""
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::Serverless::Function":
            if resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary") == binary:
                return resource
    raise AssertionError(f"no function in template.yaml builds {binary}")


def metrics_namespace(binary):
    """METRICS_NAMESPACE as the template sets it for this function."""
    own = function_resource(binary)["Properties"].get("Environment", {}).get("Variables", {})
    common = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    return resolve(own.get("METRICS_NAMESPACE", common["METRICS_NAMESPACE"]))


def emitted_metrics():
    """{function dimension: Emitted} for each function crate that writes metrics."""
    emitted = {}
    for crate in sorted((ROOT / "functions").iterdir()):
        sources = [without_tests(path.read_text()) for path in function_sources(crate.name)]
        functions = {f for source in sources for f in re.findall(r'Metrics::new\(\s*"([^"]+)"\s*\)', source)}
        if not functions:
            continue
        assert len(functions) == 1, f"{crate.name} writes metrics as {functions}"
        status = any(
            re.search(r'(?:Metrics::new\(\s*"[^"]+"\s*\)|\bmetrics)\s*\.status\(', source) for source in sources
        )
        names = set().union(*(metric_names(source) for source in sources))
        emitted[functions.pop()] = Emitted(metrics_namespace(crate.name), names, status)
    return emitted


EMITTED = emitted_metrics()


# What the dashboard plots.


@dataclass
class Plotted:
    widget: str
    namespace: str
    name: str
    dimensions: dict

    def __str__(self):
        dims = ", ".join(f"{k}={v}" for k, v in self.dimensions.items())
        return f"{self.widget!r}: {self.namespace} {self.name} [{dims}]"


def plotted(body):
    """Every metric the body's metric widgets plot. Metric math entries plot nothing of
    their own; the `.`/`...` shorthands are refused so each line can be checked alone."""
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        properties = widget["properties"]
        for line in properties["metrics"]:
            fields = [f for f in line if not isinstance(f, dict)]
            if not fields:
                continue
            assert "." not in fields and "..." not in fields, f"{properties['title']!r}: write {line} in full"
            namespace, name, *pairs = fields
            assert len(pairs) % 2 == 0, f"{properties['title']!r}: {line} has a dimension without a value"
            yield Plotted(properties["title"], namespace, name, dict(zip(pairs[::2], pairs[1::2])))


def resource_names(kind, marker):
    return {marker(name) for name, r in RESOURCES.items() if r["Type"] == kind}


# AWS dimensions and the stack's resources each may name.
AWS_DIMENSIONS = {
    "FunctionName": resource_names("AWS::Serverless::Function", ref),
    "QueueName": resource_names("AWS::SQS::Queue", lambda name: att(name, "QueueName")),
    "TableName": resource_names("AWS::DynamoDB::Table", ref),
}


def problems(body, emitted=EMITTED):
    """What is wrong with the body's metrics, one line each; empty when nothing is."""
    found = []
    for widget in body["widgets"]:
        if widget["type"] == "metric" and widget["properties"].get("region") != REGION:
            found.append(f"{widget['properties'].get('title')!r}: region is not the stack's")
    for metric in plotted(body):
        if metric.namespace.startswith("AWS/"):
            for key, value in metric.dimensions.items():
                if key not in AWS_DIMENSIONS:
                    found.append(f"{metric}: dimension {key} is not checked here")
                elif value not in AWS_DIMENSIONS[key]:
                    found.append(f"{metric}: {value} is no {key} of this stack")
            continue
        function = metric.dimensions.get("Function")
        if function not in emitted:
            found.append(f"{metric}: no function writes metrics as Function={function}")
            continue
        emits = emitted[function]
        if metric.namespace != emits.namespace:
            found.append(f"{metric}: {function} writes to {emits.namespace}")
        if metric.name not in emits.names:
            found.append(f"{metric}: {function} never counts {metric.name}")
        extra = set(metric.dimensions) - ({"Function", "Status"} if emits.status else {"Function"})
        if extra:
            found.append(f"{metric}: {function} emits no dimension {sorted(extra)}")
    return found


def test_the_emitted_metrics_are_read_from_the_code():
    assert {"Received", "Recorded", "SignatureFailures", "Unsigned", "BackendErrors"} <= EMITTED["receiver"].names
    assert {"WorkDone", "WorkAlreadyDone", "WorkFailed", "MissingEvent"} <= EMITTED["worker"].names
    assert {"Examined", "Expired", "Errors"} <= EMITTED["reconciler"].names
    # The lag metrics, timed where the unit tests measure them.
    assert "CompletionToReceipt" in EMITTED["receiver"].names
    assert {"QueueWait", "WorkDuration", "EndToEnd"} <= EMITTED["worker"].names
    assert "MissedWebhooks" in EMITTED["reconciler"].names
    assert [name for e in EMITTED.values() for name in e.names if not re.fullmatch(r"[A-Za-z0-9]+", name)] == []
    assert {f: e.status for f, e in EMITTED.items()} == {"receiver": True, "worker": False, "reconciler": False}


def test_every_function_writes_to_the_stacks_namespace():
    assert {e.namespace for e in EMITTED.values()} == {STACK}


def test_the_dashboard_is_the_stacks():
    dashboard = RESOURCES["Dashboard"]["Properties"]
    assert resolve(dashboard["DashboardName"]) == STACK


def test_every_metric_on_the_dashboard_is_one_the_stack_emits():
    assert problems(dashboard_body()) == []


LAGS = {"receiver": ["CompletionToReceipt"], "worker": ["QueueWait", "WorkDuration", "EndToEnd"]}

REQUIRED = {
    "receiver": ["Received", "Recorded", "Duplicate", "OutOfOrder", "UnknownPrediction", "Rejected",
                 "BackendErrors", "SignatureFailures", "Unsigned", *LAGS["receiver"]],
    "worker": ["WorkDone", "WorkAlreadyDone", "WorkFailed", "MissingEvent", *LAGS["worker"]],
    "reconciler": ["Examined", "Advanced", "Enqueued", "Requeued", "Expired", "Errors", "MissedWebhooks"],
    ref("ReceiverFunction"): ["Duration", "Errors", "Url5xxCount", "Url4xxCount"],
    att("WorkQueue", "QueueName"): [
        "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", "ApproximateAgeOfOldestMessage",
    ],
    att("WorkDeadLetterQueue", "QueueName"): ["ApproximateNumberOfMessagesVisible"],
    att("ReconcilerDeadLetterQueue", "QueueName"): ["ApproximateNumberOfMessagesVisible"],
}


@pytest.mark.parametrize("subject", REQUIRED)
def test_the_dashboard_covers(subject):
    shown = {m.name for m in plotted(dashboard_body()) if subject in m.dimensions.values()}
    assert [name for name in REQUIRED[subject] if name not in shown] == []


def test_the_receivers_duration_shows_its_median_and_tail():
    stats = {
        option["stat"]
        for widget in dashboard_body()["widgets"]
        for line in widget["properties"]["metrics"]
        if "Duration" in line
        for option in line
        if isinstance(option, dict) and "stat" in option
    }
    assert {"p50", "p99"} <= stats


@pytest.mark.parametrize("function, name", [(f, name) for f, names in LAGS.items() for name in names])
def test_each_lag_shows_its_median_and_tail(function, name):
    stats = {
        option["stat"]
        for widget in dashboard_body()["widgets"]
        for line in widget["properties"]["metrics"]
        if name in line and function in line
        for option in line
        if isinstance(option, dict) and "stat" in option
    }
    assert {"p50", "p99"} <= stats, stats


def test_the_end_to_end_alarm_reads_its_p99_against_its_parameter_in_milliseconds():
    alarm = RESOURCES["EndToEndAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["ExtendedStatistic"], alarm["Unit"]) == ("EndToEnd", "p99", "Milliseconds")
    assert alarm["Dimensions"] == [{"Name": "Function", "Value": "worker"}]
    assert resolve(alarm["Threshold"]) == ref("EndToEndP99AlarmSeconds") + "000"
    parameter = TEMPLATE["Parameters"]["EndToEndP99AlarmSeconds"]
    pattern = parameter["AllowedPattern"]
    # Whole seconds only: "1.5" + "000" would be 1.5 seconds read as milliseconds.
    assert re.fullmatch(pattern, parameter["Default"]) and not re.fullmatch(pattern, "1.5")
    assert not re.fullmatch(pattern, "0") and not re.fullmatch(pattern, "")
    assert alarm["AlarmActions"] == alarm["OKActions"] == RESOURCES["QueueAgeAlarm"]["Properties"]["AlarmActions"]


def body_of(*lines):
    return {"widgets": [{"type": "metric", "properties": {"title": "t", "region": REGION, "metrics": list(lines)}}]}


@pytest.mark.parametrize(
    "line, complaint",
    [
        pytest.param([STACK, "Recieved", "Function", "receiver"], "never counts Recieved", id="misspelt-name"),
        pytest.param([STACK, "WorkDone", "Function", "receiver"], "never counts WorkDone", id="another-functions-name"),
        pytest.param([STACK, "EndToEnd", "Function", "receiver"], "never counts EndToEnd", id="another-functions-lag"),
        pytest.param([STACK, "QueueLag", "Function", "worker"], "never counts QueueLag", id="a-lag-never-timed"),
        pytest.param(
            [STACK, "WorkDone", "Function", "worker", "Status", "succeeded"],
            "no dimension ['Status']",
            id="status-where-none-is-emitted",
        ),
        pytest.param(
            [STACK, "Received", "Function", "receiver", "Route", "/"], "no dimension ['Route']", id="unknown-dimension"
        ),
        pytest.param([STACK, "Received"], "Function=None", id="no-function-dimension"),
        pytest.param(["WriftaiHooks", "Received", "Function", "receiver"], f"writes to {STACK}", id="another-namespace"),
        pytest.param(
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "work"],
            "no QueueName of this stack",
            id="queue-not-in-the-stack",
        ),
        pytest.param(
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", ref("WorkQueue")],
            "no QueueName",
            id="queue-url-for-its-name",
        ),
        pytest.param(
            ["AWS/Lambda", "Errors", "FunctionName", ref("Table")], "no FunctionName of this stack", id="table-for-function"
        ),
        pytest.param(
            ["AWS/Lambda", "Url5xxCount", "FunctionName", ref("ReceiverFunction"), "Resource", "x"],
            "dimension Resource",
            id="unchecked-aws-dimension",
        ),
    ],
)
def test_a_metric_the_stack_does_not_emit_is_reported(line, complaint):
    found = problems(body_of([STACK, "Received", "Function", "receiver"], line))
    assert len(found) == 1 and complaint in found[0], found


def test_a_status_dimension_is_accepted_where_the_function_emits_one():
    assert problems(body_of([STACK, "Received", "Function", "receiver", "Status", "succeeded"])) == []


def test_a_widget_of_another_region_is_reported():
    body = body_of([STACK, "Received", "Function", "receiver"])
    body["widgets"][0]["properties"]["region"] = "us-east-1"
    assert problems(body) == ["'t': region is not the stack's"]


def test_every_alarm_on_the_stacks_own_metrics_reads_one_it_emits():
    emitted = emitted_metrics()
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        alarm = resource["Properties"]
        if resolve(alarm["Namespace"]) != STACK:
            continue
        (dimension,) = alarm["Dimensions"]
        assert dimension["Name"] == "Function", name
        function = emitted.get(dimension["Value"])
        assert function and alarm["MetricName"] in function.names, f"{name}: {alarm['MetricName']} is not emitted"
