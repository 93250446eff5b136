"""Language screening: realistic sentences that must and must not match the seeded lexicons in
Chinese and English, normalisation, template blocking, note flags and their review, lexicon edits
(audited, validated, seen by the cache at once), and the admin screens."""

from __future__ import annotations

import dataclasses

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models.signals import post_save
from django.urls import reverse

from compliance import screening
from compliance.models import AuditEvent, AuditEventType, LexiconTerm, ScreeningFlag
from compliance.screening import (
    Match,
    lexicon_term_save,
    normalise,
    note_screen,
    screen_text,
    screening_flag_review,
    template_text_validate,
)

pytestmark = pytest.mark.django_db

Category = LexiconTerm.Category


def make_user(username: str, group: str | None = None, **extra):
    user = get_user_model().objects.create_user(username=username, password="x-unused-x", **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def officer(db):
    return make_user("officer", "compliance_officer", is_staff=True)


@pytest.fixture
def collector(db):
    return make_user("collector1", "collector", is_staff=True)


def categories(text: str) -> set[str]:
    return {match.category for match in screen_text(text)}


# --- sentences --------------------------------------------------------------------------------------

MUST_MATCH_ZH = [
    ("再不还钱，我们就上门收拾你。", Category.VIOLENCE),
    ("信不信我找人打断你的腿？", Category.VIOLENCE),
    ("你等着瞧，三天之内让你好看。", Category.VIOLENCE),
    ("你最好小心你的家人，出了事别怪我们。", Category.VIOLENCE),
    ("不还钱就弄死你", Category.VIOLENCE),
    ("今天下午五点前不还，就抓你去坐牢。", Category.ARREST),
    ("已经报案了，公安马上上门抓人。", Category.ARREST),
    ("再拖下去我们马上拘留你。", Category.ARREST),
    ("我们已经申请立案抓捕，你跑不掉的。", Category.ARREST),
    ("你这个老赖，借钱不还真不要脸。", Category.INSULT),
    ("你就是个骗子，人渣一个。", Category.INSULT),
    ("废物，这点钱都还不上。", Category.INSULT),
    ("我是市中级人民法院的，你的案子已经转到我们这里。", Category.IMPERSONATION),
    ("我们是公安局经侦大队的，请你配合调查。", Category.IMPERSONATION),
    ("这个案子现在由公检法联合处理。", Category.IMPERSONATION),
    ("法院执行局的人明天就到你家。", Category.IMPERSONATION),
    ("检察院已经介入，你自己看着办。", Category.IMPERSONATION),
    ("今天不还款就爆通讯录，让你所有联系人都知道。", Category.THIRD_PARTY_PRESSURE),
    ("我们会通知你的家人和单位领导。", Category.THIRD_PARTY_PRESSURE),
    ("明天我们就打电话给你单位，让同事都知道你欠钱不还。", Category.THIRD_PARTY_PRESSURE),
    ("把你的欠款截图发到你的朋友圈。", Category.THIRD_PARTY_PRESSURE),
    ("再不还就让你的亲戚朋友都知道。", Category.THIRD_PARTY_PRESSURE),
    ("你已经构成诈骗罪，要负刑事责任。", Category.FALSE_LEGAL_CLAIM),
    ("你已经被起诉了，等着收传票吧。", Category.FALSE_LEGAL_CLAIM),
    ("逾期不还会永久上征信黑名单。", Category.FALSE_LEGAL_CLAIM),
    ("以后你孩子考公务员政审都过不了。", Category.FALSE_LEGAL_CLAIM),
    ("我们明天就冻结你的银行卡和微信。", Category.FALSE_LEGAL_CLAIM),
]

MUST_MATCH_EN = [
    ("We know where you live, and we will hurt you if you don't pay.", Category.VIOLENCE),
    ("Pay by Friday or you'll regret it.", Category.VIOLENCE),
    ("Somebody might break your legs over this.", Category.VIOLENCE),
    ("You will be arrested if the balance is not paid today.", Category.ARREST),
    ("Keep ignoring us and you're going to go to jail.", Category.ARREST),
    ("There is a warrant for your arrest.", Category.ARREST),
    ("We are going to press criminal charges against you.", Category.ARREST),
    ("You are a deadbeat and a liar.", Category.INSULT),
    ("Listen to me, you idiot.", Category.INSULT),
    ("Deadbeats like you never pay.", Category.INSULT),
    ("This is the police department calling about an unpaid debt.", Category.IMPERSONATION),
    ("I'm calling from the sheriff's office regarding your account.", Category.IMPERSONATION),
    ("I am an attorney and I am telling you to pay now.", Category.IMPERSONATION),
    ("We are a government agency and this is your final warning.", Category.IMPERSONATION),
    ("As an officer of the court I can tell you this will not go away.", Category.IMPERSONATION),
    ("If we don't hear from you we will tell your employer about this debt.", Category.THIRD_PARTY_PRESSURE),
    ("We will contact your family and let them know.", Category.THIRD_PARTY_PRESSURE),
    ("Your neighbours will know you don't pay your debts.", Category.THIRD_PARTY_PRESSURE),
    ("A lawsuit has been filed against you.", Category.FALSE_LEGAL_CLAIM),
    ("We will garnish your wages today.", Category.FALSE_LEGAL_CLAIM),
    ("Your property will be seized tomorrow morning.", Category.FALSE_LEGAL_CLAIM),
    ("You have committed fraud by not paying.", Category.FALSE_LEGAL_CLAIM),
]

LAWFUL_NOTICE_ZH = (
    "如您对欠款有异议，可在收到本通知之日起30日内提出；逾期未还款的，我司可能依法向人民法院提起诉讼，"
    "并按规定报送征信系统"
)

MUST_NOT_MATCH_ZH = [
    LAWFUL_NOTICE_ZH,
    "尊敬的张先生：您在我司的借款已逾期15天，逾期利息按合同约定计算。请于3月31日前还款，如有困难请致电协商分期。",
    "我们明天上午再打你电话，确认还款安排。",
    "请谨防不法分子冒充我司或律师、法院工作人员，切勿向个人账户转账。",
    "请谨防骗子冒充我司工作人员索要验证码。",
    "谨防冒充公检法的电信诈骗。",
    "客户表示愿意先还一部分，剩余部分下月还清。",
    "客户说会跟家人商量一下，周五前回复。",
    "借款人称已委托律师，要求今后通过律师沟通。",
    "根据《中华人民共和国民法典》第六百七十六条，借款人未按照约定的期限返还借款的，应当按照约定或者国家有关规定支付逾期利息。",
    "逾期记录将如实报送中国人民银行征信中心，可能影响您的信用记录。",
    "您好，我是XX消费金融公司的催收专员小王，工号1024，今天联系您是关于您3月份的账单。",
    "客户情绪激动，挂断电话，已记录，明天再联系。",
    "经核实，客户已于3月5日结清全部欠款，案件关闭。",
    "请不要有压力，我们可以帮您申请分期还款。",
    "收拾好材料后请发送至我司邮箱。",
    "客户的父亲来电询问，坐席未透露任何欠款信息。",
    "我们将于明天从您绑定的银行卡自动扣款，请保证余额充足。",
    "客户说不想让家人知道，希望我们只联系他本人。",
    "本通知仅发送给借款人本人，我司不会联系您的家人或单位。",
]

MUST_NOT_MATCH_EN = [
    "Interest will continue to accrue at 5% per annum until the balance is paid in full.",
    "If the balance remains unpaid, we may refer the account to our attorneys, who may recommend "
    "filing a claim in court.",
    "I will ask my family to help me pay.",
    "Are you familiar with the repayment options available to you?",
    "We are a debt collector attempting to collect a debt.",
    "We are not a government agency, and this is not a legal proceeding.",
    "You can break your payment into three smaller instalments.",
    "Call us between 8am and 9pm on weekdays to set up a payment plan.",
    "The borrower said her employer pays on the 15th and she will pay then.",
    "You have the right to dispute this debt within 30 days of receiving this notice.",
    "If you have an attorney, please tell us and we will contact your attorney instead.",
    "We will not contact your employer about this debt.",
    "This is a reminder that your payment of $120 is due on 5 March; late payments may be reported "
    "to the credit bureaus.",
]


@pytest.mark.parametrize(("text", "category"), MUST_MATCH_ZH)
def test_chinese_sentences_that_must_match(text, category):
    assert category in categories(text), screen_text(text)


@pytest.mark.parametrize(("text", "category"), MUST_MATCH_EN)
def test_english_sentences_that_must_match(text, category):
    assert category in categories(text), screen_text(text)


@pytest.mark.parametrize("text", MUST_NOT_MATCH_ZH)
def test_chinese_sentences_that_must_not_match(text):
    assert screen_text(text) == []


@pytest.mark.parametrize("text", MUST_NOT_MATCH_EN)
def test_english_sentences_that_must_not_match(text):
    assert screen_text(text) == []


def test_the_sentence_lists_cover_every_category_in_both_languages():
    for sentences in (MUST_MATCH_ZH, MUST_MATCH_EN):
        assert {category for _text, category in sentences} == set(Category.values)
    assert len(MUST_MATCH_ZH) >= 15 and len(MUST_MATCH_EN) >= 10
    assert len(MUST_NOT_MATCH_ZH) >= 12 and len(MUST_NOT_MATCH_EN) >= 8


def test_the_seeded_lexicon_covers_every_category_in_both_languages_and_compiles():
    terms = LexiconTerm.objects.filter(is_active=True)
    for language in LexiconTerm.Language.values:
        seeded = terms.filter(language=language)
        assert set(seeded.values_list("category", flat=True)) == set(Category.values)
        assert seeded.count() >= 30
    for term in terms:
        pattern = screening.compile_term(phrase=term.phrase, is_regex=term.is_regex)
        assert pattern.search("") is None, term.phrase
        assert len(term.phrase) <= 200


def test_the_seed_is_idempotent():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("compliance.migrations.0003_seed_lexicons")
    before = LexiconTerm.objects.count()
    migration.seed(apps, None)
    assert LexiconTerm.objects.count() == before


# --- matching details ------------------------------------------------------------------------------


def test_a_match_says_what_matched_where_in_the_original_text():
    text = "您好！不还就爆 通 讯 录。"
    [match] = screen_text(text)
    assert match.category == Category.THIRD_PARTY_PRESSURE
    assert match.language == "zh"
    assert match.is_regex
    assert match.text == "爆 通 讯 录"
    assert text[match.start : match.end] == match.text
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.text = "x"
    assert Match(**match.as_dict()) == match


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("不还钱就爆　通　讯　录", Category.THIRD_PARTY_PRESSURE),  # ideographic spaces
        ("不还钱就爆*通*讯*录", Category.THIRD_PARTY_PRESSURE),
        ("弄\u200b死\u200b你", Category.VIOLENCE),  # zero-width spaces
        ("ｙｏｕ ｗｉｌｌ ｂｅ ａｒｒｅｓｔｅｄ", Category.ARREST),  # full-width letters
        ("YOU WILL BE ARRESTED", Category.ARREST),
        ("Pay now or you’ll regret it", Category.VIOLENCE),  # typographic apostrophe
        ("you   will\n\tbe    arrested", Category.ARREST),
        ("你这个傻Ｂ", Category.INSULT),
        ("你是liar", Category.INSULT),  # an English word right after Chinese
    ],
)
def test_normalisation_lets_nothing_slip_through(text, category):
    assert category in categories(text)


def test_normalise_maps_back_to_the_original():
    text = "爆 通\u200b讯　录 and  ＡＢＣ"
    normalised, origin = normalise(text)
    assert normalised == "爆通讯录 and ABC"
    assert len(origin) == len(normalised)
    assert [text[i] for i in origin[:4]] == ["爆", "通", "讯", "录"]
    assert text[origin[-1]] == "Ｃ"


def test_english_phrases_match_whole_words_only():
    assert categories("Are you familiar with the plan?") == set()
    assert categories("That was idiotic of you.") == {Category.INSULT}
    assert [m.phrase for m in screen_text("scumbag")] == ["scumbag"]
    assert [m.text for m in screen_text("Liars, all of you")] == ["Liars"]


def test_chinese_phrases_match_inside_longer_words():
    assert [m.text for m in screen_text("他们都叫他老赖子")] == ["老赖"]


def test_an_english_plain_phrase_does_not_match_inside_another_word(officer):
    lexicon_term_save(term=None, actor=officer, category="arrest", language="en", phrase="arrest")
    assert categories("The interest rate is 5%; we arrested nothing.") == set()
    assert categories("We will arrest him.") == {Category.ARREST}


def test_empty_text_is_clean():
    assert screen_text("") == []
    assert screen_text("   \n") == []


def test_inactive_terms_are_not_used(officer):
    term = LexiconTerm.objects.get(language="zh", phrase="老赖")
    lexicon_term_save(term=term, actor=officer, is_active=False)
    assert screen_text("老赖") == []


# --- templates and notes --------------------------------------------------------------------------


def test_a_template_that_matches_cannot_be_saved():
    with pytest.raises(ValidationError) as caught:
        template_text_validate("尊敬的客户：再不还款，公安马上上门抓人，并通知你的家人。")
    errors = caught.value.error_dict["body"]
    assert {error.code for error in errors} == {"prohibited_language"}
    texts = {error.params["text"] for error in errors}
    assert "公安马上上门抓人" in texts
    assert "通知你的家人" in texts
    assert {error.params["category"] for error in errors} >= {
        str(Category.ARREST.label),
        str(Category.THIRD_PARTY_PRESSURE.label),
    }
    message = caught.value.message_dict["body"][0]
    assert "公安马上上门抓人" in message or "通知你的家人" in message


def test_the_template_error_names_the_field():
    with pytest.raises(ValidationError) as caught:
        template_text_validate("You will be arrested.", field="subject")
    assert list(caught.value.error_dict) == ["subject"]


def test_the_same_wording_twice_is_one_error():
    with pytest.raises(ValidationError) as caught:
        template_text_validate("Deadbeat! You deadbeat.")
    [error] = caught.value.error_dict["body"]
    assert error.params["text"] == "Deadbeat"


def test_a_lawful_notice_is_accepted():
    template_text_validate(LAWFUL_NOTICE_ZH)
    template_text_validate(MUST_NOT_MATCH_EN[1])


def test_a_note_that_matches_is_flagged_not_refused():
    text = "客户一直不接电话，我跟他说再不还就爆通讯录。"
    flag = note_screen(source="contact_attempt", source_id=42, text=text)
    assert flag is not None and flag.pk
    assert flag.source == "contact_attempt" and flag.source_id == "42"
    assert flag.excerpt == text
    assert flag.reviewed_at is None
    [match] = flag.matches
    assert match["category"] == Category.THIRD_PARTY_PRESSURE
    assert match["text"] == "爆通讯录"
    assert text[match["start"] : match["end"]] == "爆通讯录"


def test_a_clean_note_is_not_flagged():
    assert note_screen(source="contact_attempt", source_id=1, text="客户承诺周五前还款500元。") is None
    assert not ScreeningFlag.objects.exists()


def test_screening_the_same_note_again_returns_its_waiting_flag():
    first = note_screen(source="case_note", source_id=7, text="You idiot.")
    again = note_screen(source="case_note", source_id=7, text="You idiot.")
    assert again == first
    assert ScreeningFlag.objects.count() == 1
    changed = note_screen(source="case_note", source_id=7, text="You idiot, pay up or else.")
    assert changed != first


def test_a_note_needs_a_source():
    with pytest.raises(ValidationError) as caught:
        note_screen(source=" ", source_id=1, text="You idiot.")
    assert "source" in caught.value.error_dict


# --- review ---------------------------------------------------------------------------------------


@pytest.fixture
def flag():
    return note_screen(source="contact_attempt", source_id=9, text="你这个老赖")


def test_an_officer_reviews_a_flag(officer, flag):
    reviewed = screening_flag_review(flag=flag, actor=officer, note="已与坐席谈话并培训")
    flag.refresh_from_db()
    assert reviewed.reviewed_by == officer == flag.reviewed_by
    assert flag.reviewed_at is not None
    assert flag.review_note == "已与坐席谈话并培训"


def test_a_user_without_the_permission_cannot_review(collector, flag):
    with pytest.raises(PermissionDenied):
        screening_flag_review(flag=flag, actor=collector, note="looks fine")
    with pytest.raises(PermissionDenied):
        screening_flag_review(flag=flag, actor=None, note="looks fine")
    flag.refresh_from_db()
    assert flag.reviewed_at is None


def test_a_reviewed_flag_cannot_be_reviewed_again(officer, flag):
    screening_flag_review(flag=flag, actor=officer, note="ok")
    with pytest.raises(ValidationError) as caught:
        screening_flag_review(flag=flag, actor=officer, note="again")
    assert "flag" in caught.value.error_dict


def test_a_review_needs_a_note(officer, flag):
    with pytest.raises(ValidationError) as caught:
        screening_flag_review(flag=flag, actor=officer, note="  ")
    assert "note" in caught.value.error_dict


# --- editing the lexicon --------------------------------------------------------------------------


def lexicon_events():
    return AuditEvent.objects.filter(event_type=AuditEventType.LEXICON_EDIT).order_by("id")


def test_a_new_term_is_audited_and_seen_at_once(officer):
    text = "你这个铁公鸡"
    assert screen_text(text) == []  # the compiled lexicon is cached now
    term = lexicon_term_save(
        term=None, actor=officer, category="insult", language="zh", phrase="铁公鸡", note="test"
    )
    assert [m.phrase for m in screen_text(text)] == ["铁公鸡"]
    [event] = lexicon_events()
    assert event.actor == officer
    assert (event.subject_type, event.subject_id) == ("compliance.lexiconterm", str(term.pk))
    assert event.details["before"] is None
    assert event.details["after"]["phrase"] == "铁公鸡"
    assert term.history.first().history_user == officer


def test_an_edit_records_before_and_after(officer):
    term = LexiconTerm.objects.get(language="en", phrase="scum")
    lexicon_term_save(term=term, actor=officer, category="violence", note="reclassified")
    [event] = lexicon_events()
    assert event.details["before"]["category"] == "insult"
    assert event.details["after"]["category"] == "violence"
    assert event.details["after"]["note"] == "reclassified"
    assert categories("scum") == {Category.VIOLENCE}


def test_an_edit_that_changes_nothing_writes_nothing(officer):
    term = LexiconTerm.objects.get(language="en", phrase="scum")
    lexicon_term_save(term=term, actor=officer, phrase="scum")
    assert not lexicon_events().exists()


@pytest.mark.parametrize(
    ("phrase", "is_regex"),
    [("(unclosed", True), ("", False), ("   ", False), ("a*", True), ("(foo|)", True)],
)
def test_a_bad_term_is_refused(officer, phrase, is_regex):
    before = LexiconTerm.objects.count()
    with pytest.raises(ValidationError) as caught:
        lexicon_term_save(
            term=None, actor=officer, category="insult", language="en", phrase=phrase, is_regex=is_regex
        )
    assert "phrase" in caught.value.error_dict
    assert LexiconTerm.objects.count() == before
    assert not lexicon_events().exists()


def test_a_duplicate_phrase_is_refused_whatever_its_case(officer):
    with pytest.raises(ValidationError) as caught:
        lexicon_term_save(term=None, actor=officer, category="insult", language="en", phrase="DeadBeat")
    assert "phrase" in caught.value.error_dict


def test_an_unknown_category_names_the_field(officer):
    with pytest.raises(ValidationError) as caught:
        lexicon_term_save(term=None, actor=officer, category="rudeness", language="en", phrase="meanie")
    assert "category" in caught.value.error_dict


def test_a_plain_phrase_is_stored_tidy(officer):
    term = lexicon_term_save(
        term=None, actor=officer, category="insult", language="en", phrase="  total   loser "
    )
    assert term.phrase == "total loser"


def test_only_officers_edit_the_lexicon(collector):
    with pytest.raises(PermissionDenied):
        lexicon_term_save(term=None, actor=collector, category="insult", language="en", phrase="meanie")


def test_the_cache_costs_one_fingerprint_query_and_follows_the_history_table(
    officer, django_assert_num_queries
):
    screen_text("warm up")
    with django_assert_num_queries(2):  # the table's count and max id, the history's max id
        screen_text("You idiot.")
    # Another process's edit: no signal reaches this one, but the history row changes the fingerprint.
    post_save.disconnect(dispatch_uid="screening_lexicon_saved", sender=LexiconTerm)
    try:
        term = LexiconTerm.objects.get(language="en", phrase="stupid")
        term.is_active = False
        term.save()
        assert screen_text("stupid") == []
        assert screening._cache.terms  # recompiled, not emptied
    finally:
        post_save.connect(screening._cache.bump, sender=LexiconTerm, dispatch_uid="screening_lexicon_saved")


# --- admin ----------------------------------------------------------------------------------------


@pytest.fixture
def officer_client(client, officer):
    client.force_login(officer)
    return client


def test_the_lexicon_admin_pages_render(officer_client):
    term = LexiconTerm.objects.get(language="zh", phrase="老赖")
    for url in (
        reverse("admin:compliance_lexiconterm_changelist"),
        reverse("admin:compliance_lexiconterm_changelist") + "?language__exact=zh&q=通讯录",
        reverse("admin:compliance_lexiconterm_add"),
        reverse("admin:compliance_lexiconterm_change", args=[term.pk]),
        reverse("admin:compliance_lexiconterm_history", args=[term.pk]),
    ):
        assert officer_client.get(url).status_code == 200, url


def test_the_admin_refuses_a_bad_regex_as_a_form_error(officer_client):
    response = officer_client.post(
        reverse("admin:compliance_lexiconterm_add"),
        {"category": "insult", "language": "en", "phrase": "(unclosed", "is_regex": "on", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "phrase" in response.context["adminform"].form.errors
    assert not LexiconTerm.objects.filter(phrase="(unclosed").exists()
    assert not lexicon_events().exists()


def test_the_admin_adds_and_edits_through_the_service(officer_client, officer):
    response = officer_client.post(
        reverse("admin:compliance_lexiconterm_add"),
        {"category": "insult", "language": "zh", "phrase": "铁公鸡", "is_active": "on", "note": ""},
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    term = LexiconTerm.objects.get(language="zh", phrase="铁公鸡")
    assert categories("你这个铁公鸡") == {Category.INSULT}
    response = officer_client.post(
        reverse("admin:compliance_lexiconterm_change", args=[term.pk]),
        {"category": "insult", "language": "zh", "phrase": "铁公鸡", "note": "switched off"},
    )
    assert response.status_code == 302
    term.refresh_from_db()
    assert not term.is_active
    assert [e.details["action"] for e in lexicon_events()] == ["create", "update"]
    assert lexicon_events().last().details["before"]["is_active"] is True
    assert screen_text("你这个铁公鸡") == []


def test_reverting_from_history_goes_through_the_service(officer_client, officer):
    term = LexiconTerm.objects.get(language="en", phrase="scum")
    lexicon_term_save(term=term, actor=officer, note="first edit")
    oldest = term.history.order_by("history_id").first()
    url = reverse("admin:compliance_lexiconterm_simple_history", args=[term.pk, oldest.history_id])
    assert officer_client.get(url).status_code == 200
    response = officer_client.post(
        url, {"category": "insult", "language": "en", "phrase": "scum", "is_active": "on", "note": ""}
    )
    assert response.status_code == 302
    term.refresh_from_db()
    assert term.note == ""
    assert lexicon_events().last().details["before"]["note"] == "first edit"


def test_lexicon_terms_cannot_be_deleted_in_the_admin(officer_client):
    term = LexiconTerm.objects.get(language="zh", phrase="老赖")
    response = officer_client.get(reverse("admin:compliance_lexiconterm_delete", args=[term.pk]))
    assert response.status_code == 403


def test_the_flag_admin_pages_render_and_mark_reviewed(officer_client, officer, flag):
    changelist = reverse("admin:compliance_screeningflag_changelist")
    assert officer_client.get(changelist).status_code == 200
    assert officer_client.get(changelist + "?reviewed_at__isnull=True").status_code == 200
    page = officer_client.get(reverse("admin:compliance_screeningflag_change", args=[flag.pk]))
    assert page.status_code == 200
    assert "<mark>老赖</mark>" in page.content.decode()
    response = officer_client.post(
        changelist,
        {"action": "mark_reviewed", "_selected_action": [flag.pk], "review_note": "坐席已培训"},
    )
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.reviewed_by == officer and flag.review_note == "坐席已培训"


def test_a_collector_does_not_get_the_review_action(client, collector, flag):
    Group.objects.get(name="collector").permissions.add(Permission.objects.get(codename="view_screeningflag"))
    client.force_login(collector)
    changelist = reverse("admin:compliance_screeningflag_changelist")
    response = client.get(changelist)
    assert response.status_code == 200
    assert "mark_reviewed" not in response.content.decode()
    client.post(changelist, {"action": "mark_reviewed", "_selected_action": [flag.pk], "review_note": "x"})
    flag.refresh_from_db()
    assert flag.reviewed_at is None
