import pytest
from pydantic import ValidationError

from vidmesh_api_gateway.schemas import SignupRequest, password_problems


@pytest.mark.parametrize("password", ["Password1!", "aB3$aB3$aB3$", "Zz9^" + "x" * 124])
def test_password_meeting_the_policy_passes(password: str) -> None:
    assert password_problems(password) == []


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Passw1!", "10 to 128 characters"),
        ("Zz9^" + "x" * 125, "10 to 128 characters"),
        ("Password!!", "a digit"),
        ("PASSWORD1!", "a lower-case letter"),
        ("password1!", "an upper-case letter"),
        ("Password12", "one of !@#$%^&*"),
        ("Password1?", "one of !@#$%^&*"),
    ],
)
def test_password_missing_a_rule_names_it(password: str, problem: str) -> None:
    assert problem in password_problems(password)


def test_signup_accepts_a_valid_body_in_camel_case() -> None:
    body = SignupRequest.model_validate(
        {"email": "ada@example.com", "password": "Password1!", "passwordConfirm": "Password1!"}
    )
    assert body.password_confirm == "Password1!"


def test_signup_refuses_a_confirmation_that_differs() -> None:
    with pytest.raises(ValidationError, match="passwordConfirm must match"):
        SignupRequest.model_validate(
            {"email": "ada@example.com", "password": "Password1!", "passwordConfirm": "Password2!"}
        )


def test_signup_refuses_an_invalid_email() -> None:
    with pytest.raises(ValidationError, match="email"):
        SignupRequest.model_validate(
            {"email": "not-an-email", "password": "Password1!", "passwordConfirm": "Password1!"}
        )


def test_signup_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        SignupRequest.model_validate(
            {
                "email": "ada@example.com",
                "password": "Password1!",
                "passwordConfirm": "Password1!",
                "role": "ADMIN",
            }
        )
