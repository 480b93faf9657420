//! The REST routes the contracts cannot derive, each declared once with its OpenAPI operation:
//! ticket suggestions (two services), report downloads (JSON or CSV), the public help center and
//! survey links (no credentials, per-client rate limits), attachments (a file as the body), and
//! the inbound-mail webhook (a raw message as the body, signed).

pub(crate) mod attachments;
pub(crate) mod help_center;
pub(crate) mod inbound_mail;
pub(crate) mod insights;
pub(crate) mod knowledge;
pub(crate) mod surveys;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

/// The hand-written routes, grouped by the credentials they need; the caller adds each group's
/// layers.
pub(crate) struct HandWritten {
    /// Authenticated like every derived route.
    pub(crate) api: OpenApiRouter<AppState>,
    /// Authenticated too, with room for a file in the body.
    pub(crate) files: OpenApiRouter<AppState>,
    pub(crate) help_center: OpenApiRouter<AppState>,
    pub(crate) surveys: OpenApiRouter<AppState>,
    pub(crate) inbound_mail: OpenApiRouter<AppState>,
}

pub(crate) fn hand_written() -> HandWritten {
    HandWritten {
        api: OpenApiRouter::new().routes(routes!(knowledge::ticket_suggestions)).routes(routes!(insights::report)),
        files: OpenApiRouter::new().routes(routes!(attachments::upload)).routes(routes!(attachments::download)),
        help_center: OpenApiRouter::new()
            .routes(routes!(help_center::public_search))
            .routes(routes!(help_center::public_article))
            .routes(routes!(help_center::public_categories))
            .routes(routes!(help_center::public_suggest))
            .routes(routes!(help_center::public_vote))
            .routes(routes!(help_center::public_click)),
        surveys: OpenApiRouter::new().routes(routes!(surveys::survey_form, surveys::submit_answer)),
        inbound_mail: OpenApiRouter::new().routes(routes!(inbound_mail::deliver)),
    }
}

impl HandWritten {
    /// Their operations and the schemas those use.
    pub(crate) fn into_openapi(self) -> utoipa::openapi::OpenApi {
        let mut openapi = self.api.into_openapi();
        openapi.merge(self.files.into_openapi());
        openapi.merge(self.help_center.into_openapi());
        openapi.merge(self.surveys.into_openapi());
        openapi.merge(self.inbound_mail.into_openapi());
        openapi
    }
}
