from tests.conftest import World, assert_problem


def test_an_admin_makes_a_sector_and_a_ranger_sees_only_it(world: World) -> None:
    mine = world.sector("AM-01")
    world.sector("AM-02")
    ranger = world.user("ranger", sector_ids=[mine["id"]])
    answer = ranger.get("/sectors")
    assert answer.status_code == 200
    assert [s["code"] for s in answer.json()] == ["AM-01"]


def test_a_request_without_a_token_is_refused(world: World) -> None:
    assert_problem(world.client.get("/sectors"), 401, "not_authenticated")
