"""The starting screening lexicons, in Chinese and English, for every category.

Sources: the conduct rules in COMPLIANCE.md (CBA 2026 and NIFA 2018 for China: no violence, threats,
insults, impersonating 公检法, 爆通讯录; Reg F 1006.14 and 1006.18 and FDCPA 806-807 for the US;
CONC 7.3 and 7.9 for the UK). Phrasings that lawful notices share with threats (法院, 征信, 律师,
"court", "attorney") are regular expressions that need the threatening context, so a notice saying
"依法向人民法院提起诉讼" or "we may refer the account to our attorneys" passes.

Idempotent (get_or_create on language and phrase): terms an officer has since edited or switched off
are left as they are. Reversing keeps the terms; they are data by now.
"""

# ruff: noqa: E501 - a table of terms reads best one term to a line
from django.db import migrations

R = True  # a regular expression
P = False  # a plain phrase

# (category, phrase, is_regex, note)
ZH = [
    # --- threats of violence
    ("violence", "弄死你", P, ""),
    ("violence", r"打断[你您]的?(腿|手|胳膊|骨头)", R, "打断你的腿、打断你的手"),
    ("violence", "上门收拾你", P, ""),
    ("violence", r"(找人|派人|叫人|带人)(来|去)?(收拾|教训|修理|弄|打|砍)[你您](?!的)", R, "找人收拾你；不含“修理你的电脑”之类"),
    ("violence", "让你好看", P, ""),
    ("violence", "等着瞧", P, "你等着瞧"),
    ("violence", r"(杀|砍|捅)(死|了)[你您]|杀你全家", R, ""),
    ("violence", r"小心[你您]的?(家人|老婆|老公|孩子|小孩|父母|爸妈)", R, "以家人安全相威胁"),
    ("violence", "泼油漆", P, "上门泼油漆、喷字"),
    ("violence", r"让[你您].{0,4}不得安宁", R, "让你全家不得安宁"),
    ("violence", "走夜路小心点", P, ""),
    # --- threats of arrest or prosecution (a debt is a civil matter)
    ("arrest", r"(抓|送|关)[你您](去|进)?(坐牢|监狱|牢里|看守所|局子)", R, "抓你去坐牢"),
    ("arrest", r"[你您](就|肯定|一定)?(要|得|会)坐牢|等着坐牢", R, ""),
    ("arrest", r"拘留[你您]|(把|将|对)[你您](进行)?(行政|刑事)?拘留", R, "马上拘留你"),
    ("arrest", "立案抓捕", P, ""),
    ("arrest", r"(公安|警察|派出所|民警)[^，。,.]{0,6}抓(人|[你您])", R, "公安马上上门抓人"),
    ("arrest", r"(上门|马上|立即|派人|准备)(抓捕|逮捕|抓)[你您]", R, ""),
    ("arrest", r"通缉|网上追逃|网上逃犯", R, ""),
    ("arrest", r"(移交|移送|报给?)(公安|派出所|经侦)", R, "把欠款说成刑事案件"),
    # --- insults (collection rules forbid insulting language, however common the word)
    ("insult", "老赖", P, "贬损用语：即便常见也不得用于催收"),
    ("insult", r"(?<!谨防)(?<!提防)(?<!小心)(?<!防范)(?<!警惕)骗子", R, "不含“谨防骗子”之类的防诈提示"),
    ("insult", "不要脸", P, ""),
    ("insult", "废物", P, ""),
    ("insult", "人渣", P, ""),
    ("insult", r"畜[生牲]", R, ""),
    ("insult", "王八蛋", P, ""),
    ("insult", "狗东西", P, ""),
    ("insult", r"傻[逼屄比叉]|煞笔|傻b(?![a-z])", R, ""),
    ("insult", r"(他|你|尼)妈的|草泥马|操[你您]|去[你您]妈", R, ""),
    ("insult", r"(怎么不|赶紧|快)去死|去死吧", R, ""),
    ("insult", "死皮赖脸", P, ""),
    ("insult", "穷鬼", P, ""),
    ("insult", r"[你您](就是|这个|这种)个?垃圾", R, ""),
    # --- impersonating police, courts, prosecutors, lawyers or government
    ("impersonation", r"(?<!冒充)公检法", R, "不含“谨防冒充公检法”"),
    (
        "impersonation",
        r"(我|我们|这里|这边|本人)是[^，。,.!！？?；;向去到在找告]{0,6}?(法院|公安|派出所|警察|警官|检察院|律师|经侦)",
        R,
        "我是法院的、我们是公安局的；“我们会去法院起诉”不算",
    ),
    ("impersonation", r"(?<!冒充)(法院|执行局|公安局?|派出所|检察院|经侦)的(人|工作人员|同志|警官)", R, "法院执行局的人"),
    ("impersonation", "检察院已经", P, ""),
    (
        "impersonation",
        r"(?<!谨防)(?<!防止)(?<!严禁)(?<!不得)(?<!禁止)(?<!警惕)(?<!提防)(?<!他人)(?<!分子)冒充(律师|警察|法官|法院|公安|检察|公检法)",
        R,
        "冒充律师；不含防诈提示“谨防不法分子冒充律师”",
    ),
    ("impersonation", r"(受|代表)(政府|公安|检察院|公检法)", R, ""),
    # --- telling family, friends or employer as pressure (爆通讯录)
    ("third_party_pressure", r"爆[你您]?的?通讯录", R, "爆通讯录"),
    ("third_party_pressure", r"(打遍|打给|群发|发给|通知|联系)[你您]?的?(通讯录|所有联系人|全部联系人)", R, ""),
    (
        "third_party_pressure",
        r"(?<!不会)(?<!不再)(?<!不得)(?<!不要)(?<!不能)(?<!不)(通知|告诉|联系|打电话给|打给|找|发给|发短信给)[你您]的?"
        r"(家人|家里人|父母|爸妈|爸爸|妈妈|老婆|老公|妻子|丈夫|亲戚|朋友|同事|领导|老板|单位|公司|同学|邻居)",
        R,
        "通知你的家人、打电话给你单位；“我们不会联系您的家人”不算",
    ),
    ("third_party_pressure", r"(发|晒|挂|曝光)(到|在)?[你您]?的?(朋友圈|微博|抖音|快手|网上|家族群|小区群|业主群|工作群|同学群)", R, "发到你的朋友圈"),
    ("third_party_pressure", r"曝光[你您]|把[你您].{0,6}曝光|公开[你您]的", R, ""),
    ("third_party_pressure", r"让[你您]的?(家人|家里人|亲戚|朋友|同事|领导|邻居)[^，。]{0,4}知道", R, "让你的亲戚朋友都知道"),
    ("third_party_pressure", r"让(全村|全公司|所有人|大家|全世界)[^，。]{0,4}知道", R, ""),
    ("third_party_pressure", r"(让[你您]|[你您]会)社(会性)?死", R, ""),
    ("third_party_pressure", r"(去|到|上)[你您]的?(单位|公司|学校|老家)去?(找[你您]|闹|堵[你您]|贴)", R, ""),
    ("third_party_pressure", "贴大字报", P, ""),
    ("third_party_pressure", r"(在|到)[你您](家|们家|小区|村|单位)[^，。]{0,4}(张贴|贴)", R, ""),
    # --- false legal claims (some may be true of one borrower: a flag asks a person to check)
    ("false_legal_claim", r"(构成|涉嫌|犯了?|触犯)[^，。]{0,6}(诈骗|恶意透支|拒不执行|刑法)", R, "你已经构成诈骗罪"),
    ("false_legal_claim", r"(追究|承担|负)[你您]?的?刑事责任", R, "要负刑事责任"),
    ("false_legal_claim", r"已(经)?(被)?(起诉|立案)|法院已(经)?(受理|立案|判决|开庭)", R, "已经被起诉：不属实时即为虚假陈述，须人工核对"),
    ("false_legal_claim", r"(永久|终身|一辈子)[^，。]{0,6}(征信|黑名单)|征信黑名单|(上|进|拉入|列入)了?(征信)?黑名单", R, "征信没有“黑名单”；如实报送征信不受影响"),
    ("false_legal_claim", r"(子女|孩子|小孩|儿子|女儿)[^，。]{0,6}(上学|入学|考公|当兵|参军|政审|考编)", R, "影响子女上学、考公"),
    ("false_legal_claim", r"(列为|列入|纳入|成为|已经是|变成)失信", R, "失信被执行人只能由法院判决后认定"),
    ("false_legal_claim", r"(变成|成为|沦为)黑户", R, ""),
    (
        "false_legal_claim",
        r"(马上|立即|立刻|今天|明天|已经)[^，。]{0,4}(冻结|查封|扣押|拍卖)|(冻结|查封|扣押|拍卖)[你您]的?(银行卡|账户|房子|房产|车|财产|工资|微信|支付宝)",
        R,
        "未经法院裁定不得声称冻结、查封",
    ),
    ("false_legal_claim", r"限制[你您]?的?(高消费|出行|坐飞机|坐高铁|乘坐)|(坐不了|不能坐)(飞机|高铁)", R, "限制消费只能由法院决定"),
]  # fmt: skip

# Telling or calling someone of the borrower's (the lookbehinds keep "we will not contact ...").
TELL = r"(?<!not\s)(?<!never\s)(?<!n't\s)\b(tell|inform|notify|contact|call|phone|ring|text|e-?mail|visit)\s+(your|ur)\s+"

EN = [
    # --- threats of violence
    ("violence", r"\b(we|I|they)('ll| will| are going to| am going to| are gonna| gonna)\s+(hurt|kill|beat|harm)\s+you\b", R, "we will hurt you"),
    ("violence", r"\byou('ll| will| are going to)\s+regret\b", R, "you'll regret it"),
    ("violence", r"\bbreak\s+(your|ur)\s+(legs?|arms?|neck|face|bones|knees?|fingers|jaw)\b", R, "not 'break your payment into instalments'"),
    ("violence", "watch your back", P, ""),
    ("violence", "we know where you live", P, ""),
    ("violence", r"\bsomething\s+(bad|terrible|nasty)\s+(will|could|might|is going to)\s+happen", R, ""),
    ("violence", "beat you up", P, ""),
    ("violence", "kill you", P, ""),
    ("violence", "pay up or else", P, ""),
    ("violence", r"\b(your|ur)\s+(family|kids|children|wife|husband)\s+(will|could|might)\s+(get\s+hurt|suffer|pay)", R, ""),
    # --- threats of arrest or prosecution (Reg F 1006.18(c)(1): implying a crime)
    ("arrest", r"\byou('ll| will| are going to| could| can| may| might)\s+(be|get)\s+(arrested|locked up|jailed|put in jail|thrown in jail)", R, ""),
    ("arrest", r"\b(go|going|sent|send you|put you|throw you|end up)\s+(to|in|into)\s+(jail|prison)\b", R, "go to jail"),
    ("arrest", "criminal charges", P, ""),
    ("arrest", "warrant for your arrest", P, ""),
    ("arrest", "arrest warrant", P, ""),
    ("arrest", "press charges", P, ""),
    ("arrest", "arrest you", P, ""),
    ("arrest", r"\bpolice\s+(will|are going to|are coming|are on (their|the) way)", R, ""),
    ("arrest", "criminal record", P, ""),
    # --- insults and obscenity (FDCPA 806(2))
    ("insult", "deadbeat", P, ""),
    ("insult", "scum", P, ""),
    ("insult", "scumbag", P, ""),
    ("insult", "liar", P, "whole word: not 'familiar'"),
    ("insult", r"\bidiot(ic|s)?\b", R, ""),
    ("insult", "moron", P, ""),
    ("insult", "loser", P, ""),
    ("insult", r"\blow-?life\b", R, ""),
    ("insult", "worthless", P, ""),
    ("insult", "pathetic", P, ""),
    ("insult", "stupid", P, ""),
    ("insult", "bitch", P, ""),
    ("insult", "bastard", P, ""),
    ("insult", "thief", P, ""),
    ("insult", r"\bf+[u*]+c+k+\w*|\bsh[i1!]t\b|\bpiece of sh[i1!*]t\b", R, ""),
    # --- impersonating police, courts, lawyers or government (Reg F 1006.18(b)(1), (b)(7))
    (
        "impersonation",
        r"\b(this is|I am|I'm|we are|we're|calling from|calling on behalf of|on behalf of)\s+(the\s+)?"
        r"(police|sheriff('s)?|FBI|court|district attorney|attorney general|IRS|law enforcement)\b",
        R,
        "this is the police; calling from the sheriff",
    ),
    ("impersonation", "officer of the court", P, ""),
    ("impersonation", "court officer", P, ""),
    ("impersonation", r"\b(I am|I'm|this is)\s+(an?\s+|your\s+)?(lawyer|attorney|solicitor|barrister)\b", R, "not 'I am not a lawyer'; true only if the writer is one"),
    ("impersonation", r"\b(we are|we're|I am|I'm|this is|calling from)\s+(from\s+)?(a|the)\s+(federal\s+|state\s+)?government\b", R, "not 'we are not a government agency'"),
    ("impersonation", "federal agent", P, ""),
    # --- telling family, friends or employer as pressure (Reg F 1006.6(d), 1006.22(f))
    # Not "we will not contact your employer", not "contact your attorney".
    ("third_party_pressure", TELL + r"(employer|boss|manager|supervisor|workplace|HR|colleagues?|co-?workers?)\b", R, "tell your employer"),
    ("third_party_pressure", TELL + r"(family|relatives|wife|husband|spouse|partner|parents?|kids|children)\b", R, "contact your family"),
    ("third_party_pressure", TELL + r"(mother|mom|mum|father|dad|friends?|neighbou?rs?|church|pastor)\b", R, "call your mum"),
    ("third_party_pressure", r"\b(your\s+)?(neighbou?rs|family|friends|employer|boss|colleagues|co-?workers|everyone|the whole town)\s+(will|are going to|is going to|gonna)\s+(know|find out|hear|learn)\b", R, "your neighbours will know"),
    ("third_party_pressure", "name and shame", P, ""),
    ("third_party_pressure", r"\b(post|publish|share|expose)\s+(about\s+)?(you|your\s+(debt|name|photos?|pictures?|details))\b.{0,30}\b(facebook|social media|online|internet|twitter|instagram|tiktok|whatsapp)", R, ""),
    ("third_party_pressure", "embarrass you", P, ""),
    ("third_party_pressure", r"\b(come|show up|turn up)\s+(to|at)\s+(your\s+)?(work|workplace|office|job)\b", R, ""),
    # --- false legal claims (Reg F 1006.18(c)); one may be true of one borrower: a person checks
    ("false_legal_claim", r"\b(lawsuit|suit|case|claim|legal action)\s+has\s+(already\s+)?been\s+(filed|started|issued|commenced)", R, "false unless filed"),
    ("false_legal_claim", r"\bwe('ve| have)\s+(already\s+)?(filed\s+(a\s+)?(lawsuit|suit|claim)|sued you|taken you to court)", R, "false unless filed"),
    ("false_legal_claim", r"\b(will|going to|gonna|are)\s+(\w+\s+){0,2}garnish", R, "garnishment needs a judgment"),
    ("false_legal_claim", r"\b(wages|salary|paycheck)\s+(will|is going to|are going to)\s+be\s+garnished", R, ""),
    ("false_legal_claim", r"\byour\s+(property|house|home|car|assets|belongings|bank account|accounts)\s+(will|is going to|are going to)\s+be\s+(seized|taken|repossessed|frozen|confiscated|sold)", R, ""),
    ("false_legal_claim", r"\byou('ve| have)?\s+(committed|are committing)\s+(a\s+)?(fraud|crime|theft|felony)", R, ""),
    ("false_legal_claim", r"\bthis is (a\s+)?(criminal matter|fraud|crime|felony)\b", R, ""),
    ("false_legal_claim", r"\b(be|get)\s+deported\b", R, ""),
    ("false_legal_claim", "no right to dispute", P, "Reg F 1006.34: the consumer may dispute"),
    ("false_legal_claim", r"\b(ruin|destroy)\s+your\s+credit\s+(forever|permanently|for life)|\bcredit\s+(will be|is)\s+(ruined|destroyed)", R, ""),
    ("false_legal_claim", r"\bbailiffs?\s+(will|are going to|are on (their|the) way|are coming)", R, "UK: enforcement agents only after a court order"),
    ("false_legal_claim", r"\bprocess server\s+(is|will be|has been)\b", R, ""),
    ("false_legal_claim", r"\byou('ll| will| are going to)\s+lose\s+your\s+(job|house|home|kids|children)\b", R, ""),
]  # fmt: skip


def seed(apps, schema_editor):
    LexiconTerm = apps.get_model("compliance", "LexiconTerm")
    for language, terms in (("zh", ZH), ("en", EN)):
        for category, phrase, is_regex, note in terms:
            LexiconTerm.objects.get_or_create(
                language=language,
                phrase=phrase,
                defaults={"category": category, "is_regex": is_regex, "note": note, "is_active": True},
            )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_jurisdiction_profiles")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
