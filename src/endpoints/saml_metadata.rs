//! `GET /_sso/saml/<id>/metadata`: our SP metadata for a SAML connection (entity id, ACS with
//! the HTTP-POST binding, SLO return, and the signing certificate when requests are signed).

use http::Method;

use super::{Request, Response};
use crate::app::App;
use crate::error::Error;

pub fn handle(app: &App, id: &str, req: &Request<'_>) -> Result<Response, Error> {
    if req.method != Method::GET && req.method != Method::HEAD {
        return Err(Error::MethodNotAllowed);
    }
    let registry = app.registry.load();
    let provider = registry.get_saml(id).ok_or(Error::NotFound)?;
    let xml = provider.sp_metadata()?;
    Ok(Response::new(200, "application/samlmetadata+xml", xml))
}
