"""The saved-capacity store against moto's DynamoDB: one transaction per save, chunked, and never
overwriting a save that has not been restored."""

from __future__ import annotations

import json

import boto3
import pytest

from opsflow.store.capacity import (
    CHUNK_BYTES,
    RESTORED,
    AlreadySaved,
    CapacityStore,
    DynamoCapacityStore,
    GroupCapacity,
    InMemoryCapacityStore,
    NotSaved,
    ResourceRef,
    SavedCapacity,
    ServiceCapacity,
)

from .conftest import table_from_template

pytestmark = pytest.mark.usefixtures("mocked_aws")


def dynamo_store() -> DynamoCapacityStore:
    return DynamoCapacityStore(boto3.client("dynamodb"), table_from_template("CapacityTable", "capacity"))


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> CapacityStore:
    return dynamo_store() if request.param == "dynamodb" else InMemoryCapacityStore()


def a_save(run_id: str = "env-power-1", instances: int = 3) -> SavedCapacity:
    return SavedCapacity(
        environment="qa",
        run_id=run_id,
        services=(ServiceCapacity("arn:aws:ecs:us-east-1:123456789012:cluster/qa", "qa-api", 2),),
        groups=(GroupCapacity("qa-web", 2, 3, 6),),
        instances=tuple(f"i-{n:017x}" for n in range(instances)),
        databases=("instance:qa-orders", "cluster:qa-reports"),
    )


def test_a_save_reads_back_exactly(store: CapacityStore) -> None:
    store.save(a_save())

    saved = store.unrestored("qa")

    assert saved is not None
    assert (saved.services, saved.groups, saved.instances, saved.databases) == (
        a_save().services,
        a_save().groups,
        a_save().instances,
        a_save().databases,
    )


def test_an_unrestored_save_is_never_overwritten(store: CapacityStore) -> None:
    store.save(a_save("first"))

    with pytest.raises(AlreadySaved) as refused:
        store.save(a_save("second", instances=1))

    assert refused.value.existing.run_id == "first"
    saved = store.unrestored("qa")
    assert saved is not None
    assert saved.run_id == "first"
    assert len(saved.instances) == 3


def test_once_restored_the_next_shutdown_saves_again(store: CapacityStore) -> None:
    store.save(a_save("first"))
    store.mark_restored("qa", "first", "start-1")
    assert store.unrestored("qa") is None
    latest = store.latest("qa")
    assert latest is not None
    assert latest.status == RESTORED
    assert latest.restored_by == "start-1"

    store.save(a_save("second", instances=1))

    saved = store.unrestored("qa")
    assert saved is not None
    assert saved.run_id == "second"
    assert len(saved.instances) == 1


def test_only_the_save_being_restored_can_be_marked_restored(store: CapacityStore) -> None:
    store.save(a_save("first"))

    with pytest.raises(NotSaved):
        store.mark_restored("qa", "someone-else", "start-1")
    store.mark_restored("qa", "first", "start-1")
    with pytest.raises(NotSaved):
        store.mark_restored("qa", "first", "start-2")


def test_a_large_environment_is_saved_in_a_few_chunks_in_one_transaction() -> None:
    dynamo_store()
    client = boto3.client("dynamodb")
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    store = DynamoCapacityStore(client, "capacity")
    big = a_save(instances=20_000)  # ~460 KB of JSON: more than one DynamoDB item holds

    store.save(big)

    assert calls == ["TransactWriteItems"]
    items = client.query(
        TableName="capacity",
        KeyConditionExpression="environment = :env",
        ExpressionAttributeValues={":env": {"S": "qa"}},
    )["Items"]
    chunks = [i for i in items if i["part"]["S"].startswith("chunk#")]
    assert len(chunks) == 2
    assert all(len(c["body"]["S"]) <= CHUNK_BYTES for c in chunks)
    saved = store.unrestored("qa")
    assert saved is not None
    assert saved.instances == big.instances


def test_a_smaller_save_after_a_larger_one_ignores_the_old_chunks() -> None:
    store = dynamo_store()
    store.save(a_save("first", instances=20_000))
    store.mark_restored("qa", "first", "start-1")

    store.save(a_save("second", instances=2))

    saved = store.unrestored("qa")
    assert saved is not None
    assert len(saved.instances) == 2


def test_what_a_start_up_could_not_restore_is_kept_and_marking_again_is_harmless(
    store: CapacityStore,
) -> None:
    store.save(a_save("first"))

    store.mark_restored("qa", "first", "start-1", not_restored=(ResourceRef("group", "qa-web"),))
    store.mark_restored(
        "qa", "first", "start-1", not_restored=(ResourceRef("group", "qa-web"),)
    )  # retried step

    latest = store.latest("qa")
    assert latest is not None
    assert latest.not_restored == (ResourceRef("group", "qa-web"),)
    assert latest.groups == a_save().groups  # the resources stay readable after the restore
    with pytest.raises(NotSaved):
        store.mark_restored("qa", "first", "start-2")


def test_the_databases_a_stop_could_not_stop_are_noted_on_its_save(store: CapacityStore) -> None:
    store.save(a_save("first"))

    store.note_not_stopped("qa", "first", ("instance:qa-orders",))
    store.note_not_stopped("qa", "someone-else", ("cluster:qa-reports",))

    saved = store.unrestored("qa")
    assert saved is not None
    assert saved.not_stopped == ("instance:qa-orders",)
    assert store.down_environments() == ["qa"]


def test_a_save_restored_before_resource_references_reads_back_with_references() -> None:
    store = dynamo_store()
    body = {
        "services": [["arn:aws:ecs:us-east-1:123456789012:cluster/qa", "qa-api", 2]],
        "groups": [["qa-web", 2, 3, 6]],
        "instances": ["i-0000000000000000a"],
        "databases": ["instance:qa-orders"],
    }
    # The head and chunk exactly as the release before references wrote them: save, then mark_restored
    # with the labels its runs reported.
    client = boto3.client("dynamodb")
    client.put_item(
        TableName="capacity",
        Item={
            "environment": {"S": "qa"},
            "part": {"S": "head"},
            "status": {"S": "restored"},
            "run_id": {"S": "env-power-old"},
            "saved_at": {"S": "2026-11-23T19:00:02Z"},
            "chunks": {"N": "1"},
            "counts": {"S": '{"services": 1, "groups": 1, "instances": 1, "databases": 1}'},
            "restored_at": {"S": "2026-11-24T06:00:05Z"},
            "restored_by": {"S": "env-power-old-start"},
            "not_restored": {
                "S": '["ecs service qa-api", "auto scaling group qa-web", "instance i-0000000000000000a", '
                '"database instance:qa-orders"]'
            },
        },
    )
    client.put_item(
        TableName="capacity",
        Item={
            "environment": {"S": "qa"},
            "part": {"S": "chunk#0000"},
            "run_id": {"S": "env-power-old"},
            "body": {"S": json.dumps(body, separators=(",", ":"))},
        },
    )

    latest = store.latest("qa")

    assert latest is not None
    assert latest.status == RESTORED
    assert latest.groups == (GroupCapacity("qa-web", 2, 3, 6),)
    assert latest.not_restored == (
        ResourceRef("service", "qa-api"),
        ResourceRef("group", "qa-web"),
        ResourceRef("instance", "i-0000000000000000a"),
        ResourceRef("database", "instance:qa-orders"),
    )
    store.save(a_save("next"))  # a restored save does not hold the environment down


def test_what_was_not_restored_is_stored_as_references_beside_no_labels() -> None:
    store = dynamo_store()
    store.save(a_save("first"))

    store.mark_restored(
        "qa", "first", "start-1", not_restored=(ResourceRef("database", "cluster:qa-reports"),)
    )

    head = boto3.client("dynamodb").get_item(
        TableName="capacity", Key={"environment": {"S": "qa"}, "part": {"S": "head"}}
    )["Item"]
    assert json.loads(head["not_restored_refs"]["S"]) == [["database", "cluster:qa-reports"]]
    assert "not_restored" not in head
