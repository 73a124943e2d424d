"""The cast most registry tests share: an owner, her model "fraud", and a CI account."""

import pytest

from tests.factories import make_model


@pytest.fixture
def owner(make_user):
    return make_user("olivia", "owner")


@pytest.fixture
def fraud(owner):
    return make_model(owner, "fraud")


@pytest.fixture
def ci(make_user):
    return make_user("ci-bot", "ci")


@pytest.fixture
def ci_api(fraud, ci, api_for):
    return api_for(ci)
