from perimeterdb.policy.variables import Literal, Var, parse_template, render, render_plain


def test_parse_template_parts() -> None:
    parts = parse_template("t/${aws:username}-${*}-${aws:PrincipalTag/team, 'x y'}")
    assert parts == ("t/", Var("aws:username"), "-", Literal("*"), "-", Var("aws:principaltag/team", "x y"))


def test_malformed_variable_stays_text() -> None:
    assert parse_template("a${b c}d") == ("a${b c}d",)
    assert parse_template("a${b") == ("a${b",)


def test_render_missing_value_and_default() -> None:
    parts = parse_template("${aws:username}")
    assert render(parts, lambda k: None) is None
    assert render_plain(parse_template("${k, 'd'}"), lambda k: None) == "d"
    assert render(parse_template("${k}"), lambda k: ("a", "b")) is None  # multivalued keys are not variables
    assert render(parts, lambda k: "a*") == [("a*", True)]
