from perimeterdb.policy.match import compile_arns, compile_globs


def test_actions_are_case_insensitive_with_wildcards() -> None:
    m = compile_globs(["DynamoDB:Get*", "dynamodb:?uery"], ignore_case=True)
    assert m("dynamodb:getitem")
    assert m("dynamodb:query")
    assert not m("dynamodb:putitem")


def test_star_matches_everything() -> None:
    assert compile_arns(["*"])("arn:aws:s3:::anything")


def test_arn_wildcards_stay_in_their_segment_except_the_last() -> None:
    m = compile_arns(["arn:aws:dynamodb:us-*:111122223333:table/*"])
    assert m("arn:aws:dynamodb:us-east-1:111122223333:table/orders/index/x")
    assert not m("arn:aws:dynamodb:eu-west-1:111122223333:table/orders")
    seg = compile_arns(["arn:aws:dynamodb:*:table/x:y:z"])
    assert not seg("arn:aws:dynamodb:us-east-1:111122223333:table/x:y:z")


def test_arns_are_case_sensitive() -> None:
    assert not compile_arns(["arn:aws:dynamodb:*:*:table/Orders"])("arn:aws:dynamodb:r:1:table/orders")
