@echo off
rem Run every enabled indicator over the vault, on Windows.
rem Usage: run_all.bat [VAULT] [CONFIG]   (defaults: Vault, indicators.toml if present)
setlocal
set "VAULT=%~1"
if "%VAULT%"=="" set "VAULT=Vault"
set "CONFIG=%~2"
if "%CONFIG%"=="" if exist indicators.toml set "CONFIG=indicators.toml"
where indicators >nul 2>nul
if %ERRORLEVEL%==0 (set "CMD=indicators") else (set "CMD=python -m indicator_core")
if "%CONFIG%"=="" (
  %CMD% run --vault "%VAULT%"
) else (
  %CMD% run --vault "%VAULT%" --config "%CONFIG%"
)
exit /b %ERRORLEVEL%
