//! The demo knowledge base: a few help articles in English with Korean translations, an
//! internal one for agents, categories and synonyms, all published.

use std::collections::HashMap;

use helpdesk_proto::knowledge::v1::{
    self as kb, ArticleStatus, Visibility, knowledge_service_client::KnowledgeServiceClient,
};
use helpdesk_runtime::grpc::outgoing;
use tonic::transport::Channel;

struct DemoArticle {
    category: &'static str,
    tags: &'static [&'static str],
    visibility: Visibility,
    en: (&'static str, &'static str, &'static [&'static str]),
    ko: Option<(&'static str, &'static str, &'static [&'static str])>,
}

const CATEGORIES: &[(&str, &str, &str)] =
    &[("billing", "Billing", "결제"), ("account", "Account", "계정"), ("shipping", "Shipping", "배송")];

const ARTICLES: &[DemoArticle] = &[
    DemoArticle {
        category: "billing",
        tags: &["refund"],
        visibility: Visibility::Public,
        en: (
            "How do I get a refund?",
            "You can ask for a refund within **14 days** of delivery.\n\n1. Open *Orders* and choose the order.\n2. \
             Select **Request refund** and tell us why.\n\nCard refunds reach your account in 3–5 business days.",
            &[
                "I want my money back",
                "refund my order",
                "how long does a refund take",
                "cancel my order and refund it",
            ],
        ),
        ko: Some((
            "환불은 어떻게 받나요?",
            "배송 후 **14일 이내**에 환불을 요청할 수 있습니다.\n\n1. *주문 내역*에서 주문을 고릅니다.\n2. \
             **환불 요청**을 누르고 사유를 적어 주세요.\n\n카드 환불은 영업일 기준 3~5일 안에 입금됩니다.",
            &["돈을 돌려받고 싶어요", "환불 요청합니다", "환불은 얼마나 걸리나요", "주문 취소하고 환불해 주세요"],
        )),
    },
    DemoArticle {
        category: "billing",
        tags: &["payment"],
        visibility: Visibility::Public,
        en: (
            "I was charged twice",
            "A second charge is usually a **pending authorization** that your bank releases within 3 days. \
             If both charges are still there after that, reply with your order number and we refund the duplicate.",
            &["double charge on my card", "I paid twice", "duplicate payment", "charged two times for one order"],
        ),
        ko: Some((
            "결제가 두 번 청구되었어요",
            "두 번째 결제는 대부분 **승인 대기** 상태로, 카드사에서 3일 안에 취소됩니다. \
             그 후에도 두 건이 모두 남아 있으면 주문 번호와 함께 문의해 주시면 중복 결제를 환불해 드립니다.",
            &["이중 결제가 됐어요", "카드 결제가 두 번 승인됐어요", "중복 청구", "결제 오류로 두 번 청구되었습니다"],
        )),
    },
    DemoArticle {
        category: "account",
        tags: &["login"],
        visibility: Visibility::Public,
        en: (
            "Reset your password",
            "Choose **Forgot password** on the sign-in page and enter your email. The link we send is valid \
             for 30 minutes.",
            &["I forgot my password", "can't log in", "password reset link expired"],
        ),
        ko: Some((
            "비밀번호 재설정",
            "로그인 화면에서 **비밀번호 찾기**를 누르고 이메일을 입력하세요. 보내 드리는 링크는 30분 동안 유효합니다.",
            &["비밀번호를 잊어버렸어요", "로그인이 안 돼요", "비밀번호 재설정 링크가 만료됐어요"],
        )),
    },
    DemoArticle {
        category: "shipping",
        tags: &["delivery"],
        visibility: Visibility::Public,
        en: (
            "Track your delivery",
            "Open *Orders* and select **Track** to see where your parcel is. Deliveries in Korea take 1–2 \
             business days; international ones 5–10.",
            &["where is my order", "my package has not arrived", "delivery status", "when will my parcel come"],
        ),
        ko: Some((
            "배송 조회 방법",
            "*주문 내역*에서 **배송 조회**를 누르면 택배 위치를 볼 수 있습니다. 국내 배송은 영업일 기준 1~2일, \
             해외 배송은 5~10일이 걸립니다.",
            &["택배가 언제 오나요", "배송 상태 확인", "주문한 물건이 안 와요"],
        )),
    },
    DemoArticle {
        category: "billing",
        tags: &["chargeback"],
        visibility: Visibility::Internal,
        en: (
            "Handling chargebacks (agents only)",
            "Do not refund an order that has an open chargeback: the bank already returned the money. Tag the \
             ticket `chargeback` and escalate to billing L2 with the dispute reference.",
            &["customer opened a chargeback", "bank dispute"],
        ),
        ko: None,
    },
];

/// Creates the demo knowledge base unless the tenant has articles already.
pub(crate) async fn seed(channel: Channel, auth: Option<&str>) -> Result<(), tonic::Status> {
    let mut kb = KnowledgeServiceClient::new(channel);
    let existing =
        kb.list_articles(outgoing(kb::ListArticlesRequest { page_size: 1, ..Default::default() }, auth)).await?;
    if !existing.into_inner().articles.is_empty() {
        return Ok(());
    }
    for (position, (id, en, ko)) in CATEGORIES.iter().enumerate() {
        let names = HashMap::from([("en".to_owned(), en.to_string()), ("ko".to_owned(), ko.to_string())]);
        let category = kb::Category { id: id.to_string(), parent_id: String::new(), names, position: position as i32 };
        kb.upsert_category(outgoing(kb::UpsertCategoryRequest { category: Some(category) }, auth)).await?;
    }
    let synonyms = [
        ("en", vec![vec!["refund", "money back", "reimbursement"]]),
        ("ko", vec![vec!["비밀번호", "패스워드", "암호"]]),
    ];
    for (locale, groups) in synonyms {
        let groups = groups
            .into_iter()
            .map(|terms| kb::SynonymGroup { terms: terms.into_iter().map(str::to_owned).collect() })
            .collect();
        kb.set_synonyms(outgoing(kb::SetSynonymsRequest { locale: locale.into(), groups }, auth)).await?;
    }
    for article in ARTICLES {
        let mut translation_of = String::new();
        for (locale, content) in [("en", Some(article.en)), ("ko", article.ko)] {
            let Some((title, body, questions)) = content else { continue };
            let request = kb::CreateArticleRequest {
                locale: locale.into(),
                title: title.into(),
                body_markdown: body.into(),
                category_id: article.category.into(),
                tags: article.tags.iter().map(|tag| tag.to_string()).collect(),
                visibility: article.visibility as i32,
                questions: questions.iter().map(|question| question.to_string()).collect(),
                translation_of: translation_of.clone(),
                change_note: "demo article".into(),
                ..Default::default()
            };
            let created = kb.create_article(outgoing(request, auth)).await?.into_inner();
            let publish = kb::SetArticleStatusRequest {
                id: created.id.clone(),
                status: ArticleStatus::Published as i32,
                note: String::new(),
            };
            kb.set_article_status(outgoing(publish, auth)).await?;
            if translation_of.is_empty() {
                translation_of = created.id;
            }
        }
    }
    Ok(())
}
