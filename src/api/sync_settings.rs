//! The caller's sync settings: import on/off, the import filter, the conflict policy and
//! the full-sync window, each the deployment's default until the caller chooses.

use std::collections::BTreeMap;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Object, OpenApi};
use serde_json::{Map, Value};

use super::auth::UserAuth;
use super::body::JsonBody;
use super::error::{answers::*, ApiError, Fails};
use super::ApiTags;
use crate::domain::import_filter::{SpecialType, TypePolicy};
use crate::domain::sync_settings::MAX_WINDOW_DAYS;
use crate::domain::{ChosenSettings, ConflictPolicy};
use crate::state::AppState;
use crate::sync::settings::{self, SettingsView};

/// The caller's sync settings as they are in effect.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SyncSettingsView {
    /// Import events created in Google as slots (`source: google`).
    pub import: bool,
    /// Do not import events marked free in Google (`transparency: transparent`).
    pub skip_free: bool,
    /// Do not import private or confidential events.
    pub skip_private: bool,
    /// Do not import meetings the caller declined.
    pub skip_declined: bool,
    /// For each special Google event type, `skip` (not imported), `read_only` (imported;
    /// changes only in Google) or `import` (an ordinary slot). Ordinary (`default`)
    /// events are always importable.
    pub event_types: BTreeMap<String, String>,
    /// Who wins when a slot changed on both sides: `latest_wins`, `app_wins`,
    /// `google_wins`.
    pub conflict_policy: String,
    /// How far back a full sync lists events, in days.
    pub full_sync_window_days: u32,
    /// The values above that follow the deployment's defaults (the caller never chose
    /// them): field names, `event_types.<type>` for a type.
    pub from_defaults: Vec<String>,
    /// Only in a `PATCH` answer: whether a full sync was requested to apply the change.
    pub full_sync_requested: Option<bool>,
    /// Only in a `PATCH` answer: when the change takes effect, in words.
    pub note: Option<String>,
}

/// A change of the caller's sync settings: only the fields given change; `null` is
/// refused (leave a field out to keep it).
#[derive(Debug, Object)]
pub struct SyncSettingsPatch {
    pub import: MaybeUndefined<bool>,
    pub skip_free: MaybeUndefined<bool>,
    pub skip_private: MaybeUndefined<bool>,
    pub skip_declined: MaybeUndefined<bool>,
    /// Types to change, each to `skip`, `read_only`, `import`, or `default` (the
    /// deployment's default again); types left out keep their policy.
    pub event_types: MaybeUndefined<BTreeMap<String, String>>,
    /// `latest_wins`, `app_wins` or `google_wins`.
    pub conflict_policy: MaybeUndefined<String>,
    /// 1–3650.
    pub full_sync_window_days: MaybeUndefined<u32>,
}

impl From<&SettingsView> for SyncSettingsView {
    fn from(v: &SettingsView) -> Self {
        let e = &v.effective;
        let c = &v.chosen;
        let mut from_defaults: Vec<String> = [
            ("import", c.import.is_none()),
            ("skip_free", c.skip_free.is_none()),
            ("skip_private", c.skip_private.is_none()),
            ("skip_declined", c.skip_declined.is_none()),
            ("conflict_policy", c.conflict_policy.is_none()),
            ("full_sync_window_days", c.full_sync_window_days.is_none()),
        ]
        .into_iter()
        .filter(|(_, default)| *default)
        .map(|(name, _)| name.to_owned())
        .collect();
        from_defaults.extend(
            SpecialType::ALL
                .into_iter()
                .filter(|t| !c.event_types.contains_key(t))
                .map(|t| format!("event_types.{t}")),
        );
        SyncSettingsView {
            import: e.import,
            skip_free: e.filter.skip_free,
            skip_private: e.filter.skip_private,
            skip_declined: e.filter.skip_declined,
            event_types: e
                .filter
                .types
                .iter()
                .map(|(t, p)| (t.as_str().to_owned(), p.as_str().to_owned()))
                .collect(),
            conflict_policy: e.conflict_policy.as_str().to_owned(),
            full_sync_window_days: e.full_sync_window_days,
            from_defaults,
            full_sync_requested: None,
            note: None,
        }
    }
}

/// A patch read field by field: every refusal names its field, before anything changes.
fn parse_patch(body: &Map<String, Value>) -> Result<impl FnOnce(&mut ChosenSettings), ApiError> {
    let mut patch = ChosenSettings::default();
    let mut types: Vec<(SpecialType, Option<TypePolicy>)> = Vec::new();
    for (key, value) in body {
        if value.is_null() {
            return Err(ApiError::invalid(key, "may not be null: leave it out to keep it"));
        }
        let boolean = || {
            value
                .as_bool()
                .ok_or_else(|| ApiError::invalid(key, "must be true or false"))
        };
        match key.as_str() {
            "import" => patch.import = Some(boolean()?),
            "skip_free" => patch.skip_free = Some(boolean()?),
            "skip_private" => patch.skip_private = Some(boolean()?),
            "skip_declined" => patch.skip_declined = Some(boolean()?),
            "conflict_policy" => {
                let policy = value
                    .as_str()
                    .and_then(|p| p.parse::<ConflictPolicy>().ok())
                    .ok_or_else(|| ApiError::invalid(key, "must be latest_wins, app_wins or google_wins"))?;
                patch.conflict_policy = Some(policy);
            }
            "full_sync_window_days" => {
                let days = value
                    .as_u64()
                    .filter(|d| (1..=u64::from(MAX_WINDOW_DAYS)).contains(d))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            key,
                            format!("must be a whole number of days from 1 to {MAX_WINDOW_DAYS}"),
                        )
                    })?;
                patch.full_sync_window_days = Some(u32::try_from(days).unwrap_or(MAX_WINDOW_DAYS));
            }
            "event_types" => {
                let map = value.as_object().ok_or_else(|| {
                    ApiError::invalid(
                        key,
                        "must be an object of event type → skip | read_only | import | default",
                    )
                })?;
                for (kind, policy) in map {
                    let field = format!("event_types.{kind}");
                    let kind: SpecialType = kind.parse().map_err(|e: String| ApiError::invalid(&field, e))?;
                    let policy = match policy.as_str() {
                        Some("default") => None,
                        Some(p) => Some(p.parse::<TypePolicy>().map_err(|e| ApiError::invalid(&field, e))?),
                        None => return Err(ApiError::invalid(&field, "must be skip, read_only, import or default")),
                    };
                    types.push((kind, policy));
                }
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown field; the settings are import, skip_free, skip_private, skip_declined, event_types, \
                     conflict_policy and full_sync_window_days",
                ))
            }
        }
    }
    Ok(move |chosen: &mut ChosenSettings| {
        let ChosenSettings {
            import,
            skip_free,
            skip_private,
            skip_declined,
            event_types: _,
            conflict_policy,
            full_sync_window_days,
        } = patch;
        chosen.import = import.or(chosen.import);
        chosen.skip_free = skip_free.or(chosen.skip_free);
        chosen.skip_private = skip_private.or(chosen.skip_private);
        chosen.skip_declined = skip_declined.or(chosen.skip_declined);
        chosen.conflict_policy = conflict_policy.or(chosen.conflict_policy);
        chosen.full_sync_window_days = full_sync_window_days.or(chosen.full_sync_window_days);
        for (kind, policy) in types {
            match policy {
                Some(p) => chosen.event_types.insert(kind, p),
                None => chosen.event_types.remove(&kind),
            };
        }
    })
}

/// The caller's sync settings.
pub struct SyncSettingsApi;

#[OpenApi(tag = "ApiTags::Sync")]
impl SyncSettingsApi {
    /// Your sync settings
    ///
    /// What is imported from Google (on/off; free, private, declined events; each special
    /// event type), the conflict policy and the full-sync window, as in effect, and which
    /// of them follow the deployment's defaults.
    #[oai(path = "/sync/settings", method = "get", operation_id = "get_sync_settings")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<SyncSettingsView>, Fails<{ AUTHENTICATED }>> {
        let view = settings::current(&state.sync, auth.user_id()).await?;
        Ok(Json(SyncSettingsView::from(&view)))
    }

    /// Change your sync settings
    ///
    /// Change some settings; fields left out keep their value. A `null`, an unknown field
    /// or a bad value → 400 naming the field, and nothing changes. A change of what is
    /// imported (`import`, the filter, the window) takes effect with a full sync,
    /// requested at once: events the filter now excludes are no longer imported, and
    /// slots imported earlier that it excludes leave your slots (their events stay in
    /// Google). A new conflict policy applies from the next conflict.
    #[oai(path = "/sync/settings", method = "patch", operation_id = "update_sync_settings")]
    async fn patch(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        body: JsonBody<Map<String, Value>, SyncSettingsPatch>,
    ) -> Result<Json<SyncSettingsView>, Fails<{ BAD_REQUEST | AUTHENTICATED }>> {
        let edit = parse_patch(&body.value)?;
        let changed = settings::change(&state.sync, auth.user_id(), edit).await?;
        let mut view = SyncSettingsView::from(&changed.view);
        view.full_sync_requested = Some(changed.full_sync_requested);
        view.note = Some(
            if changed.full_sync_requested {
                "what is imported changed: a full sync was requested and applies it (now if Google is connected, \
                 else after connecting); events the filter excludes are not imported, and slots imported earlier \
                 that it excludes leave your slots while their events stay in Google"
            } else {
                "saved; nothing that is imported changed, so no sync was needed (a new conflict policy applies \
                 from the next conflict)"
            }
            .to_owned(),
        );
        Ok(Json(view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<ChosenSettings, String> {
        let map = body.as_object().unwrap().clone();
        match parse_patch(&map) {
            Ok(edit) => {
                let mut chosen = ChosenSettings::default();
                edit(&mut chosen);
                Ok(chosen)
            }
            Err(ApiError::BadRequest(b)) => Err(b.0.field.unwrap_or_default()),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_patch_names_the_field_it_refuses() {
        assert_eq!(parse(serde_json::json!({"import": null})), Err("import".into()));
        assert_eq!(parse(serde_json::json!({"skip_free": "yes"})), Err("skip_free".into()));
        assert_eq!(
            parse(serde_json::json!({"conflict_policy": "mine"})),
            Err("conflict_policy".into())
        );
        assert_eq!(
            parse(serde_json::json!({"full_sync_window_days": 0})),
            Err("full_sync_window_days".into())
        );
        assert_eq!(
            parse(serde_json::json!({"event_types": {"party": "skip"}})),
            Err("event_types.party".into())
        );
        assert_eq!(
            parse(serde_json::json!({"event_types": {"birthday": "sometimes"}})),
            Err("event_types.birthday".into())
        );
        assert_eq!(parse(serde_json::json!({"colour": 1})), Err("colour".into()));
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let chosen = parse(serde_json::json!({"skip_free": true, "event_types": {"birthday": "import"}})).unwrap();
        assert_eq!(chosen.skip_free, Some(true));
        assert_eq!(chosen.import, None);
        assert_eq!(
            chosen.event_types.get(&SpecialType::Birthday),
            Some(&TypePolicy::Import)
        );
    }
}
