//! Agents: their profiles, presence and replies to offers. Going offline or away hands open
//! chat and phone work back to its queue.

use helpdesk_proto::routing::v1::{Agent, Presence, WorkItem};
use helpdesk_runtime::error::ServiceError;
use prost::Message;

use crate::{
    router::Router,
    store,
    validate::{self, unknown},
};

impl Router {
    pub async fn upsert_agent(&self, tenant: &str, mut agent: Agent) -> Result<Agent, ServiceError> {
        validate::agent(&mut agent)?;
        let id = agent.id.clone();
        self.apply(tenant, |t, now, changes| {
            changes.settings.push((store::AGENT, agent.id.clone(), agent.encode_to_vec()));
            t.upsert_agent(agent, now, changes);
            Ok(t.agents.get(&id).map(|state| state.view()).unwrap_or_default())
        })
        .await
    }

    pub fn agent(&self, tenant: &str, id: &str) -> Result<Agent, ServiceError> {
        self.read(tenant, |t| t.agents.get(id).map(|agent| agent.view())).ok_or_else(|| unknown("id", "agent"))
    }

    pub fn agents(&self, tenant: &str, presence: i32) -> Vec<Agent> {
        let mut agents = self.read(tenant, |t| {
            t.agents
                .values()
                .filter(|agent| presence == 0 || agent.presence as i32 == presence)
                .map(|agent| agent.view())
                .collect::<Vec<_>>()
        });
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        agents
    }

    pub async fn set_presence(&self, tenant: &str, agent: &str, presence: i32) -> Result<Agent, ServiceError> {
        let presence = match Presence::try_from(presence) {
            Ok(Presence::Unspecified) | Err(_) => {
                return Err(ServiceError::invalid_field("presence", "must be online, away or offline"));
            }
            Ok(presence) => presence,
        };
        self.apply(tenant, |t, now, changes| {
            if !t.agents.contains_key(agent) {
                return Err(unknown("agent_id", "agent"));
            }
            t.set_presence(agent, presence, now, changes);
            Ok(t.agents.get(agent).map(|state| state.view()).unwrap_or_default())
        })
        .await
    }

    /// Activity by the agent, which keeps them from turning away.
    pub(crate) async fn touch(&self, tenant: &str, agent: &str) -> Result<(), ServiceError> {
        self.apply(tenant, |t, now, changes| {
            t.touch(agent, now, changes);
            Ok(())
        })
        .await
    }

    pub async fn reply_to_offer(
        &self,
        tenant: &str,
        ticket: &str,
        agent: &str,
        accept: bool,
    ) -> Result<WorkItem, ServiceError> {
        self.apply(tenant, |t, now, changes| {
            let outcome =
                if accept { t.accept(ticket, agent, now, changes) } else { t.decline(ticket, agent, now, changes) };
            outcome.map_err(ServiceError::failed_precondition)?;
            Ok(t.items.get(ticket).cloned().unwrap_or_default())
        })
        .await
    }
}
