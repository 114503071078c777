"""The demo mail page (DEBUG only) shows a staff member only the mail of participants at
their own sites: each mail is matched to a participant through the questionnaire link
it carries; a mail without a known link is shown to nobody."""

import pytest
from django.test import override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def mail_dir(tmp_path, make_prom_participant, open_questionnaire, mailoutbox, site_a, site_b):
    """Two real invitation mails (site A, site B) and one without a link, written as
    Django's file-based backend writes them (one message per file)."""
    pa = make_prom_participant(site_a, email="a-patient@example.invalid")
    pb = make_prom_participant(site_b, email="b-patient@example.invalid")
    _qa, token_a = open_questionnaire(pa)
    _qb, token_b = open_questionnaire(pb)
    by_address = {m.to[0]: m for m in mailoutbox}
    names = {}
    for label, address in (("a", pa.identity.email), ("b", pb.identity.email)):
        name = f"20260101-00000{label}.log"
        (tmp_path / name).write_bytes(
            by_address[address].message().as_bytes() + b"\n" + b"-" * 79 + b"\n"
        )
        names[label] = name
    names["none"] = "20260101-000009.log"
    (tmp_path / names["none"]).write_text("Subject: test\nTo: x@example.invalid\n\nno link\n")
    return tmp_path, names, {"a": token_a, "b": token_b}


@pytest.mark.parametrize(
    ("who", "sees"),
    [("nurse_a", {"a"}), ("nurse_b", {"b"}), ("investigator_a", {"a"}), ("monitor", {"a", "b"})],
)
def test_demo_mail_lists_only_mail_of_own_sites(client, request, mail_dir, who, sees):
    folder, names, tokens = mail_dir
    client.force_login(request.getfixturevalue(who))
    with override_settings(EMAIL_FILE_PATH=str(folder), DEBUG=True):
        page = client.get(reverse("crf:demo_mail")).content.decode()
        for label in ("a", "b", "none"):
            assert (names[label] in page) == (label in sees), (who, label)
        for label in ("a", "b"):
            detail = client.get(reverse("crf:demo_mail_file", args=[names[label]]))
            if label in sees:
                assert detail.status_code == 200
                assert f"/q/{tokens[label]}/" in detail.content.decode()
            else:
                assert detail.status_code == 404
                assert tokens[label] not in detail.content.decode()
        assert client.get(reverse("crf:demo_mail_file", args=[names["none"]])).status_code == 404
