"""The notice templates: 5 stages x 3 channels (SMS, e-mail, letter) x 2 languages, version 1.

Plain and calm: what is overdue, by when to pay, how to pay, the plans on offer (instalments,
restructuring), what arrears do to the credit record (in China: the PBOC credit reference centre),
and, on formal notices, the itemised arrears and how to dispute. The legal-referral notice states the
creditor's intention as a fact, with no threat. Every template passes the checks of
``debt_collections.notices.template_check`` (a test runs them). Existing templates are left alone.
Compliance officers get the right to edit templates.
"""

from django.db import migrations

STAGES = ("early_warning", "follow_up_call", "notice", "restructuring", "legal_referral")
FORMAL = ("notice", "restructuring", "legal_referral")

ZH = {
    "greeting": "尊敬的{{ borrower_name }}：",
    "itemised": (
        "截至{{ notice_date }}，您的借款（编号{{ loan_ref }}）已逾期{{ days_past_due }}天，"
        "逾期金额如下（{{ currency }}）：\n"
        "本金：{{ principal_overdue }}\n利息：{{ interest_overdue }}\n费用：{{ fees_overdue }}\n"
        "罚息：{{ penalty_overdue }}\n合计：{{ total_due }}"
    ),
    "deadline": "请于{{ pay_by }}前还清上述逾期款项。",
    "how_to_pay": "还款方式：{{ how_to_pay }}",
    "plans": "如一次还清有困难，您可以申请：{{ plans_on_offer }}请与我们联系，商定适合您的还款方案。",
    "credit": (
        "逾期记录将按规定如实报送中国人民银行征信中心，可能影响您今后申请贷款、信用卡等金融服务。"
        "及时还款或与我们商定还款安排，可以避免逾期继续累积。"
    ),
    "dispute": "异议与权利：{{ how_to_dispute }}",
    "contact": "联系我们：{{ creditor_name }}，{{ creditor_contact }}。",
    "sign": "{{ creditor_name }}\n{{ notice_date }}",
    "intro": {
        "early_warning": (
            "您在{{ creditor_name }}的借款（编号{{ loan_ref }}）已逾期{{ days_past_due }}天，"
            "逾期金额合计{{ currency }} {{ total_due }}。可能只是一时疏忽，请于{{ pay_by }}前还款。"
        ),
        "follow_up_call": (
            "您在{{ creditor_name }}的借款（编号{{ loan_ref }}）已逾期{{ days_past_due }}天，"
            "逾期金额合计{{ currency }} {{ total_due }}，此前的还款提醒尚未收到您的回复。我们的同事会与您"
            "电话联系，了解您的情况；您也可以主动联系我们。请于{{ pay_by }}前还款，或与我们商定还款安排。"
        ),
        "notice": "本函为正式催收通知。您在{{ creditor_name }}的借款已逾期，现将逾期情况告知如下。",
        "restructuring": (
            "您的借款已逾期较长时间。我们希望与您一起找到可行的还款方案：您可以申请债务重组或分期还款。"
        ),
        "legal_referral": (
            "您的借款已逾期较长时间，我们多次联系仍未能与您商定还款安排。{{ creditor_name }}拟将本案转交"
            "律师事务所，依法通过诉讼等法律途径处理。在此之前，您仍可以还款或联系我们商定还款方案。"
        ),
    },
    "subject": {
        "early_warning": "还款提醒：借款{{ loan_ref }}已逾期",
        "follow_up_call": "还款提醒：借款{{ loan_ref }}逾期未还",
        "notice": "催收通知书：借款{{ loan_ref }}",
        "restructuring": "还款方案通知：借款{{ loan_ref }}",
        "legal_referral": "拟转交律师处理的通知：借款{{ loan_ref }}",
    },
    "sms": {
        "early_warning": (
            "【{{ creditor_name }}】{{ borrower_name }}您好，您的借款已逾期{{ days_past_due }}天，应还"
            "{{ currency }} {{ total_due }}，请于{{ pay_by }}前还款。还款有困难可申请分期。逾期将如实报送"
            "征信。咨询：{{ creditor_contact }}。{{ opt_out }}"
        ),
        "follow_up_call": (
            "【{{ creditor_name }}】{{ borrower_name }}您好，您的借款已逾期{{ days_past_due }}天，应还"
            "{{ currency }} {{ total_due }}。请于{{ pay_by }}前还款，或来电商定分期等还款安排。逾期将如实"
            "报送征信。咨询：{{ creditor_contact }}。{{ opt_out }}"
        ),
        "notice": (
            "【{{ creditor_name }}】{{ borrower_name }}您好，我们已向您发出正式催收通知：逾期金额"
            "{{ currency }} {{ total_due }}，请于{{ pay_by }}前还款。需分期或有异议请联系"
            "{{ creditor_contact }}。逾期将如实报送征信。{{ opt_out }}"
        ),
        "restructuring": (
            "【{{ creditor_name }}】{{ borrower_name }}您好，您的借款逾期{{ currency }} {{ total_due }}。"
            "您可申请分期或债务重组，请于{{ pay_by }}前联系{{ creditor_contact }}。逾期将如实报送征信。"
            "{{ opt_out }}"
        ),
        "legal_referral": (
            "【{{ creditor_name }}】{{ borrower_name }}您好，您的借款逾期{{ currency }} {{ total_due }}，"
            "{{ creditor_name }}拟将本案转交律师依法处理。请于{{ pay_by }}前还款或联系{{ creditor_contact }}"
            "商定还款方案。逾期将如实报送征信。{{ opt_out }}"
        ),
    },
}

EN = {
    "greeting": "Dear {{ borrower_name }},",
    "itemised": (
        "As of {{ notice_date }}, your loan {{ loan_ref }} is {{ days_past_due }} days overdue. "
        "The overdue amounts ({{ currency }}) are:\n"
        "Principal: {{ principal_overdue }}\nInterest: {{ interest_overdue }}\nFees: {{ fees_overdue }}\n"
        "Penalty interest: {{ penalty_overdue }}\nTotal: {{ total_due }}"
    ),
    "deadline": "Please pay the overdue amount by {{ pay_by }}.",
    "how_to_pay": "How to pay: {{ how_to_pay }}",
    "plans": (
        "If you cannot pay it all at once, you can ask for {{ plans_on_offer }} Contact us and we will look "
        "for a plan you can afford."
    ),
    "credit": (
        "We report payment history accurately, so missed payments appear on your credit record and can make "
        "it harder to borrow in future. Paying, or agreeing a plan with us, stops the arrears from growing."
    ),
    "dispute": "Disputes and your rights: {{ how_to_dispute }}",
    "contact": "Contact us: {{ creditor_name }}, {{ creditor_contact }}.",
    "sign": "{{ creditor_name }}\n{{ notice_date }}",
    "intro": {
        "early_warning": (
            "Your loan {{ loan_ref }} with {{ creditor_name }} is {{ days_past_due }} days overdue, with "
            "{{ currency }} {{ total_due }} outstanding. This may simply have been missed: please pay by "
            "{{ pay_by }}."
        ),
        "follow_up_call": (
            "Your loan {{ loan_ref }} with {{ creditor_name }} is {{ days_past_due }} days overdue, with "
            "{{ currency }} {{ total_due }} outstanding, and we have not heard from you since our reminder. "
            "A member of our team will call you to understand your situation, or you can contact us first. "
            "Please pay by {{ pay_by }}, or agree a repayment plan with us."
        ),
        "notice": (
            "This is a formal notice of arrears. Your loan with {{ creditor_name }} is overdue; the details "
            "are below."
        ),
        "restructuring": (
            "Your loan has been overdue for some time. We would like to work with you on a repayment plan you "
            "can manage: you can ask us for a restructuring or an instalment plan."
        ),
        "legal_referral": (
            "Your loan has been overdue for a long time, and we have not been able to agree a repayment plan "
            "with you. {{ creditor_name }} intends to refer the account to its lawyers, who may ask a court to "
            "decide the matter. Before that happens, you can still pay or agree a plan with us."
        ),
    },
    "subject": {
        "early_warning": "Payment reminder: loan {{ loan_ref }} is overdue",
        "follow_up_call": "Your overdue loan {{ loan_ref }}: please get in touch",
        "notice": "Formal notice of arrears: loan {{ loan_ref }}",
        "restructuring": "Repayment options for loan {{ loan_ref }}",
        "legal_referral": "Notice of intended referral to lawyers: loan {{ loan_ref }}",
    },
    "sms": {
        "early_warning": (
            "{{ creditor_name }}: {{ borrower_name }}, your loan is {{ days_past_due }} days overdue. Please "
            "pay {{ currency }} {{ total_due }} by {{ pay_by }}. Instalment plans are available. Missed payments "
            "show on your credit record. Questions: {{ creditor_contact }}. {{ opt_out }}"
        ),
        "follow_up_call": (
            "{{ creditor_name }}: {{ borrower_name }}, your loan is {{ days_past_due }} days overdue with "
            "{{ currency }} {{ total_due }} to pay. Please pay by {{ pay_by }} or call us to agree an instalment "
            "plan. Missed payments show on your credit record. {{ creditor_contact }}. {{ opt_out }}"
        ),
        "notice": (
            "{{ creditor_name }}: {{ borrower_name }}, we have sent you a formal notice of arrears: "
            "{{ currency }} {{ total_due }} to pay by {{ pay_by }}. To agree a plan or to dispute it: "
            "{{ creditor_contact }}. Missed payments show on your credit record. {{ opt_out }}"
        ),
        "restructuring": (
            "{{ creditor_name }}: {{ borrower_name }}, your loan has {{ currency }} {{ total_due }} overdue. You "
            "can ask for an instalment plan or a restructuring: contact us by {{ pay_by }} at "
            "{{ creditor_contact }}. Missed payments show on your credit record. {{ opt_out }}"
        ),
        "legal_referral": (
            "{{ creditor_name }}: {{ borrower_name }}, your loan has {{ currency }} {{ total_due }} overdue and "
            "{{ creditor_name }} intends to refer it to its lawyers. Please pay or agree a plan by {{ pay_by }}: "
            "{{ creditor_contact }}. Missed payments show on your credit record. {{ opt_out }}"
        ),
    },
}

LANGUAGES = {"zh-hans": ZH, "en": EN}

def _body(text: dict, stage: str, channel: str) -> str:
    parts = [text["greeting"], text["intro"][stage]]
    if stage in FORMAL:
        parts += [text["itemised"], text["deadline"]]
    parts += [text["how_to_pay"], text["plans"], text["credit"]]
    if stage in FORMAL:
        parts.append(text["dispute"])
    parts.append(text["contact"])
    if channel == "email":
        parts.append("{{ opt_out }}")
    else:
        parts.append(text["sign"])
    return "\n\n".join(parts)


def templates():
    """(stage, channel, language, subject, body) for every seeded template."""
    for stage in STAGES:
        for language, text in LANGUAGES.items():
            yield stage, "sms", language, "", text["sms"][stage]
            for channel in ("email", "letter"):
                yield stage, channel, language, text["subject"][stage], _body(text, stage, channel)


def forwards(apps, schema_editor):
    NoticeTemplate = apps.get_model("debt_collections", "NoticeTemplate")
    for stage, channel, language, subject, body in templates():
        NoticeTemplate.objects.get_or_create(
            stage=stage,
            channel=channel,
            language=language,
            defaults={"subject": subject, "body": body, "version": 1, "is_active": True},
        )
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    officer, _created = Group.objects.get_or_create(name="compliance_officer")
    officer.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="debt_collections",
            codename__in=["view_noticetemplate", "add_noticetemplate", "change_noticetemplate", "view_notice"],
        )
    )


class Migration(migrations.Migration):
    # The screening lexicon has "have you arrested" (compliance 0007), which the templates must pass.
    dependencies = [("debt_collections", "0004_case_work_permissions"), ("compliance", "0007_lexicon_have_you_arrested")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
