"""The wire format of offers and needs (DESIGN.md "Offers and needs on the wire"), both ways,
and the pure pieces under it: places, rounding, categories, validation."""

from __future__ import annotations

import time

import pytest

from activitypub.model import from_json
from activitypub.vocab import PUBLIC
from node.posts import categories, places, wire
from node.posts.validation import PostError, validate

BASE = "https://node.example"
WHO = wire.Addressing(attributed_to=f"{BASE}/users/ana", org_uri=f"{BASE}/groups/maison")


def a_post(**changes) -> dict:
    post = {
        "id": "7f3a", "uri": f"{BASE}/posts/7f3a", "url": f"{BASE}/posts/7f3a", "kind": "offer",
        "category": "shower", "title": "Warm shower",
        "description_html": "<p>Shower and towel, Tue–Thu 9–12</p>",
        "neighbourhood": "Saint-Gilles", "latitude": 50.83, "longitude": 4.34,
        "starts_at": None, "ends_at": 1_796_083_140.0, "capacity": 6, "unit": "one",
        "urgency": 1, "languages": "fr,nl", "visibility": "public", "status": "open",
        "created_at": 1_795_000_000.0, "updated_at": 1_795_000_000.0,
    }
    post.update(changes)
    return post


def test_an_offer_is_a_note_with_fep_0837_fields():
    note = wire.to_note(a_post(), WHO, BASE)
    assert note["type"] == "Note" and note["purpose"] == "offer" and note["name"] == "Warm shower"
    assert note["attributedTo"] == WHO.attributed_to and note["url"] == note["id"]
    assert note["to"] == [PUBLIC]
    assert note["cc"] == [WHO.followers, f"{WHO.attributed_to}/followers", WHO.org_uri]
    assert "summary" not in note  # Mastodon would hide the post behind a content warning
    intent = note["publishes"]
    assert intent["id"] == f"{BASE}/posts/7f3a#primary" and intent["type"] == "Intent"
    assert intent["action"] == "deliverService" and intent["provider"] == WHO.attributed_to
    assert intent["resourceClassifiedAs"] == [f"{BASE}/categories/shower"]
    assert intent["availableQuantity"] == {"hasUnit": "one", "hasNumericalValue": "6"}
    assert note["unitBased"] is False and note["endTime"].startswith("2026-11-30")
    assert note["location"] == {"type": "Place", "name": "Saint-Gilles", "latitude": 50.83,
                                "longitude": 4.34, "radius": 1, "units": "km"}
    names = [t["name"] for t in note["tag"]]
    assert names == ["#offer", "#shower", "#SaintGilles"]
    assert all(t["type"] == "Hashtag" for t in note["tag"])
    # Mastodon's readers get the post's words in its language (French here), not ours.
    assert note["content"].startswith("<p>Offre · Warm shower")
    assert "Douche" in note["content"] and "Saint-Gilles" in note["content"]
    assert "jusqu’au 1 décembre 2026" in note["content"]  # 23:59 UTC is December in Brussels
    assert "Répondre en privé" in note["content"] and note["contentMap"] == {
        "fr": note["content"]}
    assert not any(word in note["content"] for word in ("OFFER", "until", "reply privately"))


@pytest.mark.parametrize(("locale", "words"), [
    ("nl", ("<p>Aanbod · Warm shower", "Sint-Gillis", "tot 1 december 2026",
            "Privé antwoorden")),
    ("en", ("<p>Offer · Warm shower", "Saint-Gilles", "until December 1, 2026",
            "Reply privately")),
])
def test_the_words_around_a_post_are_in_the_language_asked(locale, words):
    text = wire.content_html(a_post(), BASE, locale)
    assert all(word in text for word in words), text
    fulfilled = wire.content_html(a_post(status="fulfilled"), BASE, locale)
    assert {"nl": "<strong>Vervuld</strong>", "en": "<strong>Fulfilled</strong>"}[locale] in \
        fulfilled


def test_a_need_names_a_receiver_and_a_due_date():
    note = wire.to_note(a_post(kind="need", category="clothes", urgency=3), WHO, BASE)
    assert note["purpose"] == "request" and note["urgency"] == 3
    assert note["publishes"]["receiver"] == WHO.attributed_to
    assert "provider" not in note["publishes"]
    assert note["publishes"]["action"] == "transfer"
    assert note["publishes"]["due"] == note["endTime"]
    assert note["content"].startswith("<p>Besoin · ")


def test_closure_marks_the_intent_finished():
    note = wire.to_note(a_post(status="fulfilled"), WHO, BASE)
    assert note["publishes"]["finished"] is True
    assert note["publishes"]["availableQuantity"]["hasNumericalValue"] == "0"
    assert note["content"].startswith("<p><strong>Réalisée</strong> · ")
    update = wire.wrap("Update", f"{BASE}/activities/1", WHO.attributed_to, note, BASE)
    assert update["type"] == "Update" and update["object"] is note
    terms = update["@context"][1]
    assert terms["vf"] == wire.VF and terms["om2"] == wire.OM2
    assert terms["urgency"] == "entraide:urgency" and terms["entraide"] == f"{BASE}/ns#"


def test_withdrawal_is_a_delete_with_a_tombstone():
    delete = wire.tombstone_delete(f"{BASE}/activities/2", WHO.attributed_to,
                                   f"{BASE}/posts/7f3a", WHO)
    assert delete["object"] == {"id": f"{BASE}/posts/7f3a", "type": "Tombstone",
                                "formerType": "Note"}


def test_followers_only_posts_are_not_public():
    note = wire.to_note(a_post(visibility="followers"), WHO, BASE)
    assert PUBLIC not in note["to"] + note["cc"]
    assert note["to"] == [WHO.followers, f"{WHO.attributed_to}/followers"]
    by_group = wire.to_note(a_post(visibility="followers"),
                            wire.Addressing(WHO.org_uri, WHO.org_uri), BASE)
    assert by_group["to"] == [WHO.followers]


def _from_note(note: dict) -> dict:
    """What the inbox does: the typed model first, then the post's own fields."""
    return wire.from_note(from_json(note), note)


def test_a_remote_note_becomes_post_fields():
    note = wire.to_note(a_post(kind="need", status="in_progress"), WHO, BASE)
    fields = _from_note(note)
    assert fields["kind"] == "need" and fields["category"] == "shower"
    assert fields["title"] == "Warm shower" and fields["neighbourhood"] == "Saint-Gilles"
    assert fields["org_uri"] == WHO.org_uri and fields["attributed_to"] == WHO.attributed_to
    assert fields["status"] == "in_progress" and fields["capacity"] == 6
    assert fields["languages"] == "fr" and fields["origin_host"] == "node.example"
    assert fields["ends_at"] == 1_796_083_140.0


def test_a_remote_note_is_cleaned_and_rounded():
    note = wire.to_note(a_post(), WHO, BASE)
    note["name"] = "<b>Shower</b><script>x</script>"
    note["content"] = '<p onclick="x()">hi<script>alert(1)</script></p>'
    note["location"] = {"type": "Place", "name": "Ixelles", "latitude": 50.8271234,
                        "longitude": 4.3719876}
    note["publishes"]["finished"] = True
    fields = _from_note(note)
    assert "<" not in fields["title"] and "script" not in fields["description_html"]
    assert "onclick" not in fields["description_html"]
    assert (fields["latitude"], fields["longitude"]) == (50.83, 4.37)
    assert fields["status"] == "fulfilled"


def test_plain_notes_are_not_posts():
    with pytest.raises(wire.NotAPost):
        _from_note({"id": f"{BASE}/n/1", "type": "Note", "attributedTo": WHO.org_uri,
                    "content": "hello"})
    with pytest.raises(wire.NotAPost):
        _from_note({"id": f"{BASE}/n/1", "type": "Note", "purpose": "barter",
                    "attributedTo": WHO.org_uri, "publishes": {}})


def test_an_offer_names_the_post_it_satisfies_in_both_shapes():
    offer = wire.offer(f"{BASE}/responses/1/offer", WHO.attributed_to,
                       "https://other.example/posts/9", "https://other.example/users/x",
                       ["https://other.example/users/x"], "<p>hi</p>")
    commitment = offer["object"]["stipulates"]
    assert offer["object"]["type"] == "Agreement" and commitment["type"] == "Commitment"
    assert commitment["satisfies"] == "https://other.example/posts/9#primary"
    assert wire.satisfied_post(offer) == "https://other.example/posts/9"
    older = {"type": "Offer", "object": {"type": "Commitment"},
             "inReplyTo": "https://other.example/posts/9"}
    assert wire.satisfied_post(older) == "https://other.example/posts/9"
    older_inside = {"type": "Offer", "object": {"type": "Commitment",
                                                "inReplyTo": "https://other.example/posts/8"}}
    assert wire.satisfied_post(older_inside) == "https://other.example/posts/8"
    assert wire.satisfied_post({"type": "Offer", "object": {"type": "Note"}}) is None


def test_accept_names_the_offer_and_the_agreement():
    accept = wire.answer("Accept", f"{BASE}/a/1", WHO.attributed_to, "https://o.example/of/1",
                         "https://o.example/users/x")
    assert accept["object"] == "https://o.example/of/1"
    assert accept["result"] == {"type": "Agreement", "id": "https://o.example/of/1#agreement"}
    reject = wire.answer("Reject", f"{BASE}/a/2", WHO.attributed_to, "https://o.example/of/2",
                         "https://o.example/users/y", why="full")
    # The words go in a private Note in the responder's language; the Reject says why.
    assert "result" not in reject and "content" not in reject
    assert reject["answerReason"] == "full"
    undo = wire.undo_answer(f"{BASE}/a/3", WHO.attributed_to, accept)
    assert undo["type"] == "Undo" and undo["object"]["id"] == accept["id"]
    assert "@context" not in undo["object"] and undo["to"] == ["https://o.example/users/x"]


def test_places_and_categories():
    assert len(places.BRUSSELS) == 19
    assert places.round_coordinate(50.834567) == 50.83
    assert places.hashtag("Saint-Josse-ten-Noode") == "SaintJosseTenNoode"
    custom = places.parse_places("Centre:50.1:4.2;Gare")
    assert [p.name for p in custom] == ["Centre", "Gare"]
    assert places.parse_places("") == places.BRUSSELS
    assert len(categories.CATEGORIES) == 11
    assert {c.action for c in categories.CATEGORIES} == {"transfer", "deliverService"}
    assert len({c.hashtag for c in categories.CATEGORIES}) == 11


def _validate(form: dict, **kw):
    return validate(form, form.get("languages", []), kw.pop("kind", "offer"),
                    neighbourhoods=places.BRUSSELS, now=time.time(), need_expiry_days=30,
                    may_proxy=kw.pop("may_proxy", False))


def test_exact_coordinates_are_rounded_before_storing():
    fields = _validate({"category": "food", "title": "Soup",
                        "neighbourhood": "Ixelles", "latitude": "50.827123",
                        "longitude": "4.371987"})
    assert (fields.latitude, fields.longitude) == (50.83, 4.37)
    default = _validate({"category": "food", "title": "Soup", "neighbourhood": "Jette"})
    assert (default.latitude, default.longitude) == (50.88, 4.33)


def test_validation_names_every_bad_field():
    with pytest.raises(PostError) as caught:
        _validate({"category": "x", "title": "", "neighbourhood": "Paris", "latitude": "abc",
                   "ends_at": "2000-01-01", "capacity": "0", "unit": "kg", "urgency": "9",
                   "languages": ["french"], "visibility": "everyone", "proxied": "1"})
    assert set(caught.value.errors) == {
        "category", "title", "neighbourhood", "latitude", "ends_at", "capacity", "unit",
        "urgency", "languages", "visibility", "proxied"}
    with pytest.raises(PostError) as caught:
        _validate({"category": "food", "title": "Soup", "neighbourhood": "Jette",
                   "proxied": "1"}, may_proxy=True)
    assert set(caught.value.errors) == {"proxied"}  # only needs are posted for someone


def test_remote_text_is_bounded():
    note = wire.to_note(a_post(), WHO, BASE)
    note["content"] = "<p>" + "a" * 50_000 + "</p>"
    note["name"] = "n" * 1000
    del note["contentMap"]
    fields = _from_note(note)
    assert len(fields["description_html"]) <= wire.REMOTE_CONTENT_MAX + 10
    assert fields["description_html"].endswith("</p>") and len(fields["title"]) == 200
    note["content"] = {"not": "text"}
    assert _from_note(note)["description_html"] == ""
